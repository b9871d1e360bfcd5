"""The workflow sandbox: a guest exception fails the run with its type, message and traceback."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from dolmen.platform.errors import TrapError
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.records import Event
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.workflow.run_context import RunContext
from dolmen.platform.workflow.driver import Target
from dolmen.platform.workflow.replay import Replay
from dolmen.platform.workflow.sandbox import WorkflowSandbox, explain_trap
from dolmen.platform.workflow.verify import VerifyDriver
from tests.support.guests import load_guest, new_loader

EID = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
CALLS = "testing:wf-faults/calls@1.0.0"
DOUBLE = "testing:act/basic@1.0.0.double"
PANIC = "the guest panicked or aborted (wasm `unreachable` executed)"


@pytest.fixture(scope="module")
def wf_faults() -> LoadedComponent:
    return load_guest(new_loader("workflow"), "wf-faults", "fault-flows")


class LiveRun:
    """A driver for a live run of code that makes no requests: its output is logged as a live run's is."""

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        raise AssertionError(f"unexpected requests {events}")

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        raise AssertionError("unexpected wait")

    def resolve(self, ffqn: str) -> Target:
        raise AssertionError(f"unexpected call of {ffqn}")

    def eager_lock(self, target: Target) -> tuple[str, int] | None:
        return None


def trap(loaded: LoadedComponent, function: str, params: list[Any], driver: Any = None) -> TrapError:
    """The TrapError of a run of `function` whose log holds only its `created` event."""
    ffqn = f"{CALLS}.{function}"
    events = [Event(0, "created", {"ffqn": ffqn, "params": params}, 1000, "1-0")]
    ctx = RunContext(EID, ffqn, Replay(EID, events), driver or VerifyDriver())
    sandbox = WorkflowSandbox()
    try:
        with pytest.raises(TrapError) as info:
            sandbox.invoke(loaded, ctx, timeout_ms=60_000, memory_bytes=None)
    finally:
        sandbox.close()
    return info.value


def test_a_guest_exception_names_its_type_message_and_traceback(wf_faults: LoadedComponent) -> None:
    """ValueError("bad input 42") fails the run naming the exception on the first line, its traceback below."""
    message = trap(wf_faults, "bad-input", [42]).message
    lines = message.splitlines()
    assert lines[0] == f"{PANIC} in {CALLS}#bad-input; the guest raised ValueError: bad input 42"
    assert lines[1] == "Traceback (most recent call last):"
    assert any(line.strip().startswith('File "') and line.endswith("in bad_input") for line in lines[2:])
    assert lines[-1] == "ValueError: bad input 42"


def test_opening_a_file_names_the_error_and_where_io_belongs(wf_faults: LoadedComponent) -> None:
    """open() in a workflow fails naming the OSError, the path, and that files belong in activities."""
    message = trap(wf_faults, "read-file", ["/data/orders.csv"]).message
    headline = message.splitlines()[0]
    assert headline.startswith(f"{PANIC} in {CALLS}#read-file; the guest raised ")
    assert "/data/orders.csv" in headline
    assert headline.endswith("(a workflow has no files, sockets or environment variables: do that I/O in an activity and pass its result to the workflow)")
    assert "in read_file" in message and "Traceback (most recent call last):" in message


def test_the_same_log_fails_the_same_way(wf_faults: LoadedComponent) -> None:
    """Replaying the same log gives the same failure: output capture changes nothing in the run."""
    assert trap(wf_faults, "bad-input", [7]).message == trap(wf_faults, "bad-input", [7]).message


def test_a_live_run_logs_its_output_and_a_replay_does_not(wf_faults: LoadedComponent) -> None:
    """What a live run prints becomes the runner's log lines; a verifying replay logs none of it."""
    with capture_logs() as live:
        trap(wf_faults, "bad-input", [42], LiveRun())
    lines = [entry["event"] for entry in live if entry.get("source") == "workflow"]
    assert "[stdout] checking input 42" in lines and "[stderr] input 42 looks wrong" in lines
    assert any(line.startswith("[stderr] Traceback (most recent call last):") for line in lines)
    with capture_logs() as replayed:
        trap(wf_faults, "bad-input", [42])
    assert [entry for entry in replayed if entry.get("source") == "workflow"] == []


def test_a_replay_logs_only_what_the_code_prints_past_its_log(wf_faults: LoadedComponent) -> None:
    """A line printed while the run replays its log is not logged again; one printed after it caught up is."""
    ffqn = f"{CALLS}.chatty-call"
    child = f"{EID}.1"
    events = [
        Event(0, "created", {"ffqn": ffqn, "params": [21]}, 1000, "1-0"),
        Event(1, "child_submitted", {"join_set": None, "child_id": child, "ffqn": DOUBLE, "params": [21]}, 1001, "2-0"),
        Event(2, "response", {"child_id": child, "result": 42}, 1002, "3-0"),
    ]
    ctx = RunContext(EID, ffqn, Replay(EID, events), LiveRun())
    sandbox = WorkflowSandbox()
    try:
        with capture_logs() as logs:
            value = sandbox.invoke(wf_faults, ctx, timeout_ms=60_000, memory_bytes=None)
    finally:
        sandbox.close()
    assert value == 42
    assert [entry["event"] for entry in logs if entry.get("source") == "workflow"] == ["[stdout] after double(21) = 42"]


def test_a_trap_without_a_traceback_quotes_the_end_of_stderr() -> None:
    """Without a Python traceback, the last stderr lines are quoted; without stderr, the message is kept."""
    assert explain_trap("wasm trap: out of bounds", b"loading\nfatal: bad state\n") == (
        "wasm trap: out of bounds; guest stderr: loading | fatal: bad state"
    )
    assert explain_trap("wasm trap: out of bounds", b"") == "wasm trap: out of bounds"
