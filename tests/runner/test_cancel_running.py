"""Cancelling running work stops it at once, on real runner processes.

- a running activity's attempt is interrupted (a busy loop, a sleep);
- a workflow that directly calls a 10 s activity, cancelled after 2 s, ends
  cancelled within about a second, and the activity it ran inline records
  `cancelled` (the issue's example);
- children of `cancel` join sets are cancelled with their parent; children of
  `complete` join sets are left to finish.
"""

from __future__ import annotations

import time

from dolmen.platform.client import Client
from dolmen.platform.store.records import ExecutionState
from tests.runner.faults import ACT, SLOW, SLOW_CALL, fault_flows, types
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for

F = "testing:wf/flows@1.0.0"


def failure_kind(state: ExecutionState) -> str | None:
    return state.outcome.failure.kind if state.outcome is not None and state.outcome.failure is not None else None


def running(client: Client, execution_id: str) -> bool:
    state = client.executions.get(execution_id)
    return state is not None and state.status == "running"


def test_a_running_activity_is_interrupted_when_cancelled(redis_url: str, processes: Processes, client: Client) -> None:
    """A 60 s busy loop and a 60 s sleep each end `cancelled` soon after the request, not after 60 s."""
    deploy(redis_url, [activity(timeout_ms=120_000)])
    processes.runner()
    for ffqn, params in ((SLOW, [60_000, "spin"]), (f"{ACT}.nap", [60_000])):
        execution_id = client.submit(ffqn, params).execution_id
        wait_for(lambda e=execution_id: running(client, e), timeout=60, what=f"{ffqn} to run")  # type: ignore[misc]
        asked = time.monotonic()
        assert client.cancel(execution_id) == "requested"
        state = client.wait(execution_id, 60)
        assert time.monotonic() - asked < 30, f"{ffqn} ran on after its cancellation"
        assert failure_kind(state) == "cancelled"
        assert types(client.executions.events(execution_id))[-2:] == ["cancel_requested", "finished"]


def test_cancelling_a_workflow_stops_the_activity_it_calls_directly(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """The issue's example: a workflow waits on a direct call of a 10 s activity and is cancelled after 2 s."""
    deploy(redis_url, [activity(), fault_flows()])
    processes.runner()
    processes.scheduler()
    workflow_id = client.submit(SLOW_CALL, [60_000, "slow"]).execution_id
    child_id = f"{workflow_id}.1"
    # Cancelled once the activity runs (a loaded machine may take seconds to start the runner).
    wait_for(lambda: running(client, child_id), timeout=60, what="the activity to run")
    assert client.cancel(workflow_id) == "requested"
    state = client.wait(workflow_id, 50)
    assert failure_kind(state) == "cancelled", state.outcome
    # The activity had a minute to go: it was stopped, not waited for.
    child = client.wait(child_id, 50)
    assert failure_kind(child) == "cancelled", child.outcome
    assert child.outcome is not None and child.outcome.failure is not None
    assert workflow_id in child.outcome.failure.message
    assert "response" in types(client.executions.events(workflow_id))


def test_cancelling_a_workflow_cancels_its_cancel_join_set_children_and_leaves_complete_ones(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """`race` runs `slow` in a join set with closing strategy cancel; `cancellable` runs two in a `complete` one."""
    deploy(redis_url, [activity(), workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    race_id = client.submit(f"{F}.race", [600_000, 60_000]).execution_id
    wait_for(lambda: running(client, f"{race_id}.1"), timeout=60, what="the race's work to run")
    assert client.cancel(race_id) == "requested"
    assert failure_kind(client.wait(race_id, 60)) == "cancelled"
    assert failure_kind(client.wait(f"{race_id}.1", 60)) == "cancelled"

    holder_id = client.submit(f"{F}.cancellable", [1_500]).execution_id
    wait_for(lambda: len(client.executions.children(holder_id)) == 2, timeout=60, what="the children")
    assert client.cancel(holder_id) == "requested"
    holder = client.wait(holder_id, 60)
    assert failure_kind(holder) == "cancelled"
    assert holder.outcome is not None and holder.outcome.failure is not None
    assert "2 children of join sets with closing strategy 'complete' were left to finish" in holder.outcome.failure.message
    for child in client.executions.children(holder_id):
        state = client.wait(child, 60)
        assert state.outcome is not None and state.outcome.failure is None, state.outcome
