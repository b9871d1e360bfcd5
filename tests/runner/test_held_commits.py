"""A workflow's direct activity call is written once, with its result, when it returns quickly.

The request (`child_submitted` and the child's creation) is held back while
the activity runs inline and written with its finish in one round trip; an
activity still running after `DOLMEN_INLINE_HOLD_MS` has its request written
then. A runner killed during the hold leaves no trace of the call, and the
workflow's next attempt calls it again.
"""

from __future__ import annotations

import time

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from tests.runner.faults import SLOW, SLOW_CALL, fault_flows, kill, types, unfinished_of
from tests.support.platform import Processes, activity, deploy
from tests.support.polling import wait_for

pytestmark = pytest.mark.slow


def test_a_quick_call_is_one_write_and_reads_as_before(redis_url: str, processes: Processes, client: Client) -> None:
    """The logs of a held call are those of any direct call: the request, the child, its response."""
    deploy(redis_url, [activity(), fault_flows()])
    processes.fleet("only", concurrency=2)
    workflow_id = client.submit(SLOW_CALL, [1, "quick"]).execution_id
    state = client.wait(workflow_id, 30)
    assert state.outcome is not None and state.outcome.value == "quick"
    events = client.executions.events(workflow_id)
    assert types(events) == ["created", "child_submitted", "response", "finished"]
    (child_id,) = client.executions.children(workflow_id)
    assert types(client.executions.events(child_id)) == ["created", "finished"]
    child = client.get(child_id)
    assert child.status == "finished" and child.attempt == 1
    # Listed like any execution, and not left among the active ones.
    # Listed like any execution (once its effects are carried out), and never among the active ones.
    wait_for(lambda: child_id in {s.id for s in client.executions.list(limit=100)[0]}, what="the child listed")
    assert child_id not in {s.id for s in client.executions.list(limit=100, active_only=True)[0]}
    assert unfinished_of(client, SLOW) == 0


def test_a_runner_killed_during_the_hold_leaves_no_trace_of_the_call(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """With a hold longer than the activity, a SIGKILL mid-call loses the call, not the workflow: the
    next runner takes the workflow over (an `attempt_lost`), calls the activity again, and the logs
    hold one request and one response."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50)), fault_flows()])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    processes.env["DOLMEN_INLINE_HOLD_MS"] = "600000"
    first = processes.fleet("first", concurrency=2)["first"]
    workflow_id = client.submit(SLOW_CALL, [3000, "again"]).execution_id
    wait_for(lambda: client.get(workflow_id).owner == "first", what="the workflow to run")
    time.sleep(1)  # well into the 3 s call
    assert client.executions.children(workflow_id) == []  # held: nothing written while it runs
    kill(first)
    processes.runner("--concurrency", "2", "--name", "second")
    state = client.wait(workflow_id, 60)
    assert state.outcome is not None and state.outcome.value == "again"
    events = client.executions.events(workflow_id)
    assert types(events) == ["created", "attempt_lost", "child_submitted", "response", "finished"]
    (child_id,) = client.executions.children(workflow_id)
    assert types(client.executions.events(child_id)) == ["created", "finished"]
    # Written once it returned, the child still shows when it was called: 3 s before it finished.
    child = client.get(child_id)
    assert child.finished_at is not None and child.finished_at - child.created_at >= 2900


def test_a_long_call_shows_up_while_it_runs(redis_url: str, processes: Processes, client: Client) -> None:
    """Past the hold the request is written on its own: the child is listed as running, locked by the
    workflow's runner, and finishes normally."""
    deploy(redis_url, [activity(), fault_flows()])
    processes.env["DOLMEN_INLINE_HOLD_MS"] = "100"
    processes.fleet("only", concurrency=2)
    workflow_id = client.submit(SLOW_CALL, [3000, "long"]).execution_id
    child_id = wait_for(lambda: (c := client.executions.children(workflow_id)) and c[0], what="the child")
    child = client.get(child_id)
    assert child.status == "running" and child.owner == "only"
    state = client.wait(workflow_id, 30)
    assert state.outcome is not None and state.outcome.value == "long"
    assert types(client.executions.events(workflow_id)) == ["created", "child_submitted", "response", "finished"]
    assert types(client.executions.events(child_id)) == ["created", "finished"]
