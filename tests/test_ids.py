"""Execution ids: ULID roots, derived child ids, validation."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dolmen.platform.errors import InvalidNameError
from dolmen.platform.ids import ExecutionId, new_ulid


def test_new_root_ids_are_valid_and_unique() -> None:
    """Fresh ids parse back, are roots, and do not repeat."""
    ids = {ExecutionId.new() for _ in range(200)}
    assert len(ids) == 200
    for eid in ids:
        assert ExecutionId.parse(eid.value) == eid
        assert eid.root == eid.value and eid.parent is None


def test_ulid_encodes_time_first() -> None:
    """A ULID is its millisecond timestamp then entropy, so ids sort by creation time."""
    assert new_ulid(0, bytes(10)) == "0" * 26
    assert new_ulid(2**48 - 1, b"\xff" * 10) == "7" + "Z" * 25
    early = ExecutionId("E_" + new_ulid(1_000, b"\xff" * 10))
    late = ExecutionId("E_" + new_ulid(1_001, bytes(10)))
    assert early < late
    assert early.created_ms == 1_000


def test_created_ms_is_now_for_new_ids() -> None:
    """The time inside a new id is the current wall-clock time."""
    before = int(time.time() * 1000)
    eid = ExecutionId.new()
    after = int(time.time() * 1000)
    assert before <= eid.created_ms <= after


def test_ulid_arguments_are_checked() -> None:
    """Out-of-range times and entropy of the wrong size are refused instead of making bad ids."""
    with pytest.raises(ValueError):
        new_ulid(2**48, bytes(10))
    with pytest.raises(ValueError):
        new_ulid(-1, bytes(10))
    with pytest.raises(ValueError):
        new_ulid(0, bytes(9))


def test_child_ids_derive_from_parent_and_position() -> None:
    """A child's id is its parent's id and its position, so replay computes it again."""
    root = ExecutionId.parse("E_01JD8X3K5QZ6V2N4M7P9R0S1T2")
    child = root.child(3)
    grandchild = child.child(12)
    assert child.value == "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.3"
    assert grandchild.value == "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.3.12"
    assert grandchild.parent == child and child.parent == root
    assert grandchild.root == child.root == root.value
    assert grandchild.created_ms == root.created_ms
    assert ExecutionId.parse(grandchild.value) == grandchild
    assert root.child(3) == child


@pytest.mark.parametrize("position", [0, -1, 1_000_000_000])
def test_child_positions_are_bounded(position: int) -> None:
    """Positions run from 1 to what an id can hold."""
    with pytest.raises(ValueError):
        ExecutionId.parse("E_01JD8X3K5QZ6V2N4M7P9R0S1T2").child(position)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "E_",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T23",
        "e_01JD8X3K5QZ6V2N4M7P9R0S1T2",
        "E_01jd8x3k5qz6v2n4m7p9r0s1t2",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1TI",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1TU",
        "E_81JD8X3K5QZ6V2N4M7P9R0S1T2",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.0",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.01",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T2..1",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.1234567890",
        "01JD8X3K5QZ6V2N4M7P9R0S1T2",
        " E_01JD8X3K5QZ6V2N4M7P9R0S1T2",
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T2\n",  # `$` would match before a final newline
        "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.1\n",
    ],
)
def test_malformed_ids_are_rejected(text: str) -> None:
    """Malformed ids raise a usage error that quotes the id and shows what ids look like."""
    with pytest.raises(InvalidNameError) as info:
        ExecutionId.parse(text)
    assert f"'{text}' is not an execution id" in str(info.value)
    assert "E_01JD8X3K5QZ6V2N4M7P9R0S1T2" in str(info.value)


@pytest.mark.parametrize("value", [None, 7])
def test_non_string_ids_are_rejected(value: Any) -> None:
    """Non-strings are rejected as malformed ids, not with a TypeError."""
    with pytest.raises(InvalidNameError):
        ExecutionId.parse(value)
