"""Large results of real guests: values within the limit come back, larger ones fail clearly and for good."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dolmen.platform.errors import ValueTooLargeError
from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.activity_host import ActivityFailed, ActivityHost, ActivityLimits, ActivityOutcome
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.wit.limits import DEFAULT_MAX_VALUE_BYTES

FAULTS = "test:faults/faults@1.0.0"
ECHO = "test:echo/compound"
LIMIT = DEFAULT_MAX_VALUE_BYTES


@pytest.fixture(scope="module")
def faults(faults_guest: LoadedComponent) -> Iterator[ActivityHost]:
    host = ActivityHost(faults_guest)
    yield host
    host.close()


@pytest.fixture(scope="module")
def echo(echo_guest: LoadedComponent) -> Iterator[ActivityHost]:
    host = ActivityHost(echo_guest)
    yield host
    host.close()


def call(host: ActivityHost, ffqn: str, params: list[Any], **limits: Any) -> ActivityOutcome:
    name = Ffqn.parse(ffqn)
    return host.call(name, host.loaded.info.functions()[name], params, ActivityLimits(**limits))


def too_large(host: ActivityHost, ffqn: str, params: list[Any], **limits: Any) -> ValueTooLargeError:
    """The error of a call whose value is over the limit (it must be one)."""
    with pytest.raises(ActivityFailed) as info:
        call(host, ffqn, params, **limits)
    error = info.value.error
    assert isinstance(error, ValueTooLargeError), error
    assert not error.retryable and error.kind == "value_too_large"
    return error


def test_a_3_mb_list_u8_result_fails_as_too_large_not_as_a_trap(faults: ActivityHost) -> None:
    """3 MB of bytes exceed wasmtime's copy budget: a non-retryable failure naming the limit, not a retried trap."""
    error = too_large(faults, f"{FAULTS}.blob", [3_000_000])
    assert error.message.startswith("the result could not be copied out of the guest")
    assert f"the limit for one value is {LIMIT} bytes as JSON (DOLMEN_MAX_VALUE_BYTES)" in error.message
    # Raising the limit does not raise wasmtime's budget: still the same clear failure.
    assert too_large(faults, f"{FAULTS}.blob", [3_000_000], max_value_bytes=64 * 1024 * 1024).message.startswith(
        "the result could not be copied out of the guest"
    )


def test_a_list_u8_result_filling_the_limit_comes_back(faults: ActivityHost) -> None:
    """The dearest shape (two bytes of JSON per element) at the limit is returned whole."""
    elements = (LIMIT - 1) // 2  # "[0,0,...,0]" is 2n + 1 bytes
    assert call(faults, f"{FAULTS}.blob", [elements]).result == [0] * elements


def test_a_list_u8_result_within_the_budget_but_over_the_limit_is_refused(faults: ActivityHost) -> None:
    """2.5 MB of bytes copy fine but are 5 MB of JSON: refused by size, naming it and the setting."""
    error = too_large(faults, f"{FAULTS}.blob", [2_500_000])
    assert error.message.startswith(f"the JSON of the result is 5000001 bytes, over the limit of {LIMIT} bytes")
    assert "raise DOLMEN_MAX_VALUE_BYTES" in error.message


def test_a_string_result_at_the_limit_comes_back_and_one_byte_more_is_refused(faults: ActivityHost) -> None:
    """A string whose JSON (with its quotes) is exactly the limit passes; one character more fails."""
    assert call(faults, f"{FAULTS}.text", [LIMIT - 2]).result == "x" * (LIMIT - 2)
    error = too_large(faults, f"{FAULTS}.text", [LIMIT - 1])
    assert error.message.startswith(f"the JSON of the result is {LIMIT + 1} bytes, over the limit of {LIMIT} bytes")


def test_a_raised_limit_lets_a_larger_string_through(faults: ActivityHost) -> None:
    """Strings cost wasmtime one byte per byte, so a raised limit serves a 32 MiB string."""
    size = 32 * 1024 * 1024
    outcome = call(faults, f"{FAULTS}.text", [size], max_value_bytes=size + 2)
    assert outcome.result == "x" * size


@pytest.mark.parametrize(
    ("function", "value"),
    [
        ("echo-strings", [""] * ((LIMIT - 1) // 3)),  # '"",' per element
        ("echo-grid", [[]] * ((LIMIT - 1) // 3)),  # '[],' per element
        ("echo-floats", [0.5] * ((LIMIT - 1) // 4)),  # '0.5,' per element
    ],
)
def test_lists_of_small_elements_at_the_limit_echo_back(echo: ActivityHost, function: str, value: list[Any]) -> None:
    """Other list shapes at the limit (as params in, as results out) come back unchanged."""
    assert call(echo, f"{ECHO}.{function}", [value]).result == value
