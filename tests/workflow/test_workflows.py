"""Workflows on real runner processes: results, join sets, sleeps, children, cancellation.

The tests on one runner thread share one runner and scheduler on a Valkey of the module's own
(tests/support/shared.py); each deploys what it runs on it. The tests on four threads have their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig, RetryPolicy
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store.records import Event
from dolmen.platform.workflow.sandbox import WorkflowSandbox
from dolmen.platform.workflow.verify import verify
from tests.runner.faults import CALLS, fault_flows
from tests.support.guests import build_guest, load_guest, new_loader
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for
from tests.support.shared import SharedPlatform, shared_platform


F = "testing:wf/flows@1.0.0"
P = "testing:parent/parents@1.0.0"


def parent_workflow() -> tuple[ComponentConfig, Path]:
    """The wf-parent component: workflows calling the wf-basic workflows."""
    return ComponentConfig("parent", "workflow", "", "tests/components/wf-parent", {}), build_guest("wf-parent", "parent-flows")


def _run(client: Client, ffqn: str, params: object, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    execution_id = client.submit(ffqn, params).execution_id
    state = client.wait(execution_id, timeout)
    assert state.status == "finished", f"{execution_id} is {state.status}"
    return state


def shape(events: list[Event]) -> list[tuple[str, object]]:
    """A log without times and ids: what must be identical between runs of the same workflow."""
    out: list[tuple[str, object]] = []
    for event in events:
        data = {k: v for k, v in event.data.items() if k not in ("child_id", "component_digest", "until", "delay_id", "seed")}
        out.append((event.type, json.dumps(data, sort_keys=True)))
    return out


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    """One runner (one thread, as `platform runner` defaults to) and a scheduler on a Valkey of the module's own,
    for the tests that need nothing else; each deploys what it runs, as it would on a platform of its own."""
    with shared_platform(tmp_path_factory.mktemp("workflows"), [activity(), workflow()], gateway=False) as platform:
        yield platform


@pytest.mark.parametrize("blocking", ["in-memory", "unload"])
def test_serial_and_fan_out(shared_url: str, shared_client: Client, blocking: str) -> None:
    """Serial calls and a join-set fan-out return the right sums with either blocking strategy."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(), workflow(blocking=blocking)])
    assert _run(client, f"{F}.serial", [10]).outcome.value == 110  # type: ignore[union-attr]
    fanned = _run(client, f"{F}.fan-out", [20])
    assert fanned.outcome.value == 420  # type: ignore[union-attr]
    types = [e.type for e in client.executions.events(fanned.id)]
    assert types.count("child_submitted") == 20 and types.count("response") == 20 and types.count("join_next") == 20


def test_blocking_strategies_give_identical_logs(shared_url: str, shared_client: Client) -> None:
    """The same workflow logs the same requests and responses whether it waits in memory or unloads."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(), workflow("mem", blocking="in-memory")])
    in_memory = _run(client, f"{F}.serial", [5])
    deploy(redis_url, [activity(), workflow("unload", blocking="unload")])
    unloaded = _run(client, f"{F}.serial", [5])
    assert shape(client.executions.events(in_memory.id)) == shape(client.executions.events(unloaded.id))


def test_durable_sleep_and_logical_time(shared_url: str, shared_client: Client) -> None:
    """A durable sleep unloads the workflow and resumes it; logical time advanced by at least the delay."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(), workflow(blocking="unload")])
    state = _run(client, f"{F}.sleepy", [700])
    assert 700 <= state.outcome.value < 5000  # type: ignore[union-attr,operator]
    types = [e.type for e in client.executions.events(state.id)]
    assert types == ["created", "delay_requested", "response", "finished"]


def test_failing_child_fails_the_workflow(shared_url: str, shared_client: Client) -> None:
    """A direct call whose child fails for good fails the workflow with child_failed naming the child."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=2, initial_backoff_ms=10)), workflow()])
    state = _run(client, f"{F}.failing-child", [])
    failure = state.outcome.failure  # type: ignore[union-attr]
    assert failure is not None and failure.kind == "child_failed"
    assert f"{state.id}.1" in failure.message and "boom" in failure.message


def test_a_raising_workflow_is_retried_per_its_policy_then_fails_with_its_traceback(
    shared_url: str, shared_client: Client
) -> None:
    """A workflow raising ValueError("bad input 42") runs max_attempts times, each failure naming the
    exception with the guest's traceback, then finishes with kind trap."""
    redis_url, client = shared_url, shared_client
    retry = RetryPolicy(max_attempts=3, initial_backoff_ms=10, max_backoff_ms=10)
    deploy(redis_url, [activity(), fault_flows(retry=retry)])
    state = _run(client, f"{CALLS}.bad-input", [42])
    failure = state.outcome.failure  # type: ignore[union-attr]
    assert failure is not None and failure.kind == "trap"
    headline, _, traceback = failure.message.partition("\n")
    assert headline.endswith("; the guest raised ValueError: bad input 42 (gave up after 3 attempts)"), headline
    assert traceback.startswith("Traceback (most recent call last):") and "in bad_input" in traceback
    assert traceback.endswith("ValueError: bad input 42")
    events = client.executions.events(state.id)
    assert [e.type for e in events] == ["created", "attempt_failed", "attempt_failed", "finished"]
    for attempt in events[1:3]:
        error = attempt.data["error"]
        assert error["kind"] == "trap"
        assert error["message"] == failure.message.replace(" (gave up after 3 attempts)", "")
    # Its log replays cleanly on the same code (it ends the same way); cut before `finished`
    # (as if it were still running), the same trap is not clean: new code that traps is no upgrade.
    loaded = load_guest(new_loader("workflow"), "wf-faults", "fault-flows")
    assert verify(WorkflowSandbox(), loaded, state.id, state.ffqn, events).ok
    running = verify(WorkflowSandbox(), loaded, state.id, state.ffqn, events[:-1])
    assert not running.ok and "ValueError: bad input 42" in running.message


def test_join_set_race_and_closing(redis_url: str, processes: Processes, client: Client) -> None:
    """join-next hands out whichever response was logged first; closing=cancel cancels leftovers."""
    deploy(redis_url, [activity(), workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    assert _run(client, f"{F}.race", [50, 3000]).outcome.value == "delay"  # type: ignore[union-attr]
    assert _run(client, f"{F}.race", [5000, 10]).outcome.value == "work"  # type: ignore[union-attr]
    abandoned = _run(client, f"{F}.abandon", [3_000])
    assert abandoned.outcome.value == 2  # type: ignore[union-attr]
    for child in (f"{abandoned.id}.1", f"{abandoned.id}.2"):
        wait_for(lambda c=child: client.get(c).status == "finished", timeout=60, what=f"{child} to be cancelled")  # type: ignore[misc]
        outcome = client.get(child).outcome
        assert outcome is not None and outcome.failure is not None and outcome.failure.kind == "cancelled"


def test_child_workflows_and_scheduling(redis_url: str, processes: Processes, client: Client) -> None:
    """A workflow calls workflows directly and through a join set, and schedules one for later."""
    deploy(redis_url, [activity(), workflow(), parent_workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    state = _run(client, f"{P}.nested", [4])
    assert state.outcome.value == [20, 20]  # type: ignore[union-attr]
    child = client.get(f"{state.id}.1")
    assert child.kind == "workflow" and child.ffqn == f"{F}.serial" and child.parent == state.id
    later = _run(client, f"{P}.later", [3, 500])
    scheduled_id = later.outcome.value  # type: ignore[union-attr]
    scheduled = client.wait(scheduled_id, 60)
    assert scheduled.status == "finished" and scheduled.outcome.value == 12  # type: ignore[union-attr]
    assert scheduled.created_at + 500 <= scheduled.updated_at


@pytest.mark.parametrize(("blocking", "blocking_timeout_ms"), [("unload", 10_000), ("in-memory", 1_000)])
def test_a_scheduled_execution_is_top_level_and_the_workflow_sleeps_on(
    shared_url: str, shared_client: Client, blocking: str, blocking_timeout_ms: int
) -> None:
    """A workflow schedules an activity in 1 s, then sleeps 3 s unloaded: both finish, in separate trees.

    The scheduled execution has a root id of its own and no parent, is listed,
    names the workflow only as `scheduled_by`, and nothing of it is appended to
    the workflow's log.
    """
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(), workflow(blocking=blocking, blocking_timeout_ms=blocking_timeout_ms)])
    state = _run(client, f"{F}.schedule-then-sleep", [21, 1000, 3000], timeout=60)
    assert state.outcome is not None and state.outcome.failure is None, state.outcome
    scheduled_id = state.outcome.value
    eid = ExecutionId.parse(scheduled_id)
    assert eid.parent is None and eid.root == scheduled_id != ExecutionId(state.id).root
    events = client.executions.events(state.id)
    assert [e.type for e in events] == ["created", "scheduled", "delay_requested", "response", "finished"]
    scheduled_event, delay, fired = events[1], events[2], events[3]
    assert scheduled_event.data["execution_id"] == scheduled_id
    assert scheduled_event.data["not_before"] == scheduled_event.at + 1000
    assert fired.data.get("delay_id") == delay.data["delay_id"] and delay.data["until"] == delay.at + 3000
    assert events[-1].at >= delay.at + 3000, "the workflow finished after its sleep"
    assert all(e.data.get("child_id") != scheduled_id for e in events)
    listed = [s.id for s in client.executions.list(limit=100)[0]]
    assert scheduled_id in listed
    scheduled = client.wait(scheduled_id, 60)
    assert scheduled.status == "finished" and scheduled.outcome is not None and scheduled.outcome.value == 42
    assert scheduled.parent is None and scheduled.extra.get("scheduled_by") == state.id
    created = client.executions.events(scheduled_id)[0]
    assert created.data["scheduled_by"] == state.id and "parent_id" not in created.data
    assert created.data["scheduled_at"] == scheduled_event.at + 1000
    assert client.executions.events(state.id) == events, "the scheduled execution's end wrote nothing to the workflow"


def test_cancelling_a_workflow_cancels_its_children(redis_url: str, processes: Processes, client: Client) -> None:
    """Cancelling a parent cancels the child workflow it calls directly; that child's `complete` join set is left to finish.

    (tests/runner/test_cancel_running.py has children of `cancel` join sets, which are cancelled.)
    """
    deploy(redis_url, [activity(), workflow(), parent_workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    parent_id = client.submit(f"{P}.hold", [3000]).execution_id
    child_id = f"{parent_id}.1"
    wait_for(lambda: len(client.executions.children(child_id)) == 2, timeout=60, what="the child workflow's children")
    assert client.cancel(parent_id) == "requested"
    parent = client.wait(parent_id, 60)
    assert parent.outcome is not None and parent.outcome.failure is not None
    assert parent.outcome.failure.kind == "cancelled"
    child = client.wait(child_id, 60)
    assert child.outcome is not None and child.outcome.failure is not None and child.outcome.failure.kind == "cancelled"
    assert "2 children of join sets with closing strategy 'complete' were left to finish" in child.outcome.failure.message
    for grandchild in client.executions.children(child_id):
        state = client.wait(grandchild, 90)
        assert state.status == "finished"
        assert state.outcome is not None and state.outcome.failure is None, state.outcome
