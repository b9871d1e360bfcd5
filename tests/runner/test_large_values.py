"""Large values end to end on runner processes: up to the limit they work, past it they fail once and clearly.

The tests share one runner and scheduler on a Valkey of the module's own (tests/support/shared.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig
from dolmen.platform.errors import PayloadTooLargeError
from dolmen.platform.store.records import ExecutionState
from dolmen.platform.wit.limits import DEFAULT_MAX_VALUE_BYTES
from tests.support.guests import build_guest
from tests.support.platform import Processes
from tests.support import indexes
from tests.support.shared import SharedPlatform, settle_leftovers, shared_platform

FAULTS = "test:faults/faults@1.0.0"
FLOWS = "testing:wf-values/flows@1.0.0"
LIMIT = DEFAULT_MAX_VALUE_BYTES


def faults_activity() -> tuple[ComponentConfig, Path]:
    """The faults component as an activity, with the default retry policy (5 attempts)."""
    return ComponentConfig("faults", "activity", "", "tests/components/faults", {}), build_guest("faults", "faulty")


def value_flows() -> tuple[ComponentConfig, Path]:
    """The wf-values workflow: it sends bytes to `measure` of faults, or returns bytes."""
    return ComponentConfig("values", "workflow", "", "tests/components/wf-values", {}), build_guest("wf-values", "value-flows")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    """Both components deployed, a runner and a scheduler (which would fire retries): one for the module."""
    with shared_platform(tmp_path_factory.mktemp("values"), [faults_activity(), value_flows()], gateway=False) as platform:
        yield platform


@pytest.fixture
def redis_url(shared: SharedPlatform) -> Iterator[str]:
    """The module's Valkey (not emptied: its processes run on); what a test leaves unfinished is cancelled after it."""
    yield shared.url
    settle_leftovers(shared.url)


@pytest.fixture
def running(redis_url: str, shared: SharedPlatform) -> Processes:
    """The module's runner and scheduler."""
    return shared.processes


def finished(client: Client, execution_id: str) -> ExecutionState:
    state = client.wait(execution_id, 120)
    assert state.status == "finished", f"{execution_id} is {state.status}"
    return state


def event_types(client: Client, execution_id: str) -> list[str]:
    return [e.type for e in client.executions.events(execution_id)]


def assert_failed_once_as_too_large(client: Client, execution_id: str, message_start: str) -> str:
    """Finished `value_too_large` on its first attempt, no retry scheduled; returns the message."""
    failure = finished(client, execution_id).outcome.failure  # type: ignore[union-attr]
    assert failure is not None and failure.kind == "value_too_large", failure
    assert failure.message.startswith(message_start), failure.message
    assert "DOLMEN_MAX_VALUE_BYTES" in failure.message
    assert "attempt_failed" not in event_types(client, execution_id)
    return failure.message


def test_activity_results_over_the_limit_fail_once_without_retries(running: Processes, client: Client) -> None:
    """A 3 MB list<u8> result (past wasmtime's budget) and a 5 MiB string (past the limit) each fail at once."""
    blob = client.submit(f"{FAULTS}.blob", [3_000_000])
    text = client.submit(f"{FAULTS}.text", [5 * 1024 * 1024])
    assert_failed_once_as_too_large(client, blob.execution_id, "the result could not be copied out of the guest")
    assert_failed_once_as_too_large(client, text.execution_id, f"the JSON of the result is {5 * 1024 * 1024 + 2} bytes")
    assert event_types(client, blob.execution_id) == ["created", "finished"]


def test_activity_values_up_to_the_limit_go_through_the_store(running: Processes, client: Client) -> None:
    """Params and results at the limit travel through the log, Lua scripts and the guest unchanged."""
    elements = (LIMIT - 1) // 2
    blob = client.submit(f"{FAULTS}.blob", [elements])
    text = client.submit(f"{FAULTS}.text", [LIMIT - 2])
    given = (LIMIT - 3) // 2  # the params "[[7,...,7]]" are 2n + 3 bytes
    measured = client.submit(f"{FAULTS}.measure", [[7] * given])
    assert finished(client, blob.execution_id).outcome.value == [0] * elements  # type: ignore[union-attr]
    assert finished(client, text.execution_id).outcome.value == "x" * (LIMIT - 2)  # type: ignore[union-attr]
    assert finished(client, measured.execution_id).outcome.value == given  # type: ignore[union-attr]
    assert client.executions.events(measured.execution_id)[0].data["params"] == [[7] * given]


def test_params_over_the_limit_are_refused_at_submission(running: Processes, client: Client) -> None:
    """Params whose JSON is over the limit create nothing; the error names the limit and the setting."""
    before = indexes.zcard(client.redis, "executions")  # (the module's earlier tests' executions)
    with pytest.raises(PayloadTooLargeError) as caught:
        client.submit(f"{FAULTS}.measure", [[7] * (LIMIT // 2)])
    assert str(caught.value).startswith(f"the JSON of the params is {LIMIT + 3} bytes, over the limit of {LIMIT} bytes")
    assert "DOLMEN_MAX_VALUE_BYTES" in str(caught.value)
    assert indexes.zcard(client.redis, "executions") == before


@pytest.mark.parametrize(
    ("size", "message_start"),
    [
        # Within wasmtime's budget but 5 MB of JSON: refused before the child is written.
        (2_500_000, f"the JSON of the params of the call of {FAULTS}.measure is 5000003 bytes"),
        # Past wasmtime's budget: the call itself cannot leave the guest.
        (3_000_000, "the params the guest passed to `measure` could not be copied out of the guest"),
    ],
)
def test_workflow_call_params_over_the_limit_fail_it_without_a_child(
    running: Processes, client: Client, size: int, message_start: str
) -> None:
    """A workflow calling with params over the limit fails once, and no child is created."""
    before = indexes.zcard(client.redis, "executions")  # (the module's earlier tests' executions)
    flow = client.submit(f"{FLOWS}.send-bytes", [size])
    assert_failed_once_as_too_large(client, flow.execution_id, message_start)
    assert event_types(client, flow.execution_id) == ["created", "finished"]
    assert indexes.zcard(client.redis, "executions") == before + 1


def test_workflow_values_within_the_limit_work(running: Processes, client: Client) -> None:
    """A workflow sends 1 MB to a child and returns 1 MB."""
    sent = client.submit(f"{FLOWS}.send-bytes", [1_000_000])
    made = client.submit(f"{FLOWS}.make-bytes", [1_000_000])
    assert finished(client, sent.execution_id).outcome.value == 1_000_000  # type: ignore[union-attr]
    assert finished(client, made.execution_id).outcome.value == [0] * 1_000_000  # type: ignore[union-attr]


def test_workflow_result_over_the_limit_fails_it_once(running: Processes, client: Client) -> None:
    """A workflow returning 3 MB of bytes finishes `value_too_large` without retries."""
    made = client.submit(f"{FLOWS}.make-bytes", [3_000_000])
    assert_failed_once_as_too_large(client, made.execution_id, "the result could not be copied out of the guest")
