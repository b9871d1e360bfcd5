"""A stale runner (SIGSTOP past its lease) cannot write after another took over.

For an activity alone and one a workflow calls directly; a runner that hangs
late is taken over through its pending entry; a new owner SIGKILLed after
its takeover, with no runner left, is recovered by the repair sweep and a
fresh runner.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from tests.runner.faults import (
    SLOW,
    SLOW_CALL,
    fault_flows,
    kill,
    resume,
    running_ids,
    types,
    unfinished_of,
)
from tests.support.platform import Processes, activity, deploy
from tests.support.polling import wait_for
from tests.support import indexes

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------- 1. stale runner


def test_stale_runner_activity_finishes_once_with_the_new_owners_result(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """Two runners; the holder of a 6 s activity is SIGSTOPped past its 1 s lease: the other takes over,
    the execution stays listed as running, and the result written is the new owner's (a full 6 s after it)."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    runners = processes.fleet("first", "second", concurrency=1)
    execution_id = client.submit(SLOW, [6000, "alone"]).execution_id
    holder = wait_for(lambda: client.get(execution_id).owner, what="a runner to lock it")
    (other,) = set(runners) - {holder}
    # The lock comes a moment before the guest call starts: stopped in between, the holder would start its
    # 6 s only once resumed, and write after the new owner (a busy machine made that happen).
    time.sleep(0.5)
    os.kill(runners[holder].pid, signal.SIGSTOP)
    try:
        wait_for(lambda: client.get(execution_id).owner == other, timeout=20, what="the other runner to take over")
        assert execution_id in running_ids(client)
        assert unfinished_of(client, SLOW) == 1
    finally:
        resume(runners[holder])
    # The stale runner wakes up mid-attempt, finishes its guest call first, and is refused.
    wait_for(lambda: "lease lost" in processes.log_of(runners[holder]), timeout=15, what="the stale write")
    assert client.get(execution_id).status == "running" and execution_id in running_ids(client)
    assert unfinished_of(client, SLOW) == 1
    state = client.wait(execution_id, 30)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == "alone"
    events = client.executions.events(execution_id)
    assert types(events) == ["created", "attempt_lost", "finished"]
    lost, finished = events[1], events[2]
    assert lost.data["owner"] == holder and lost.data["attempt"] == 1
    assert finished.at - lost.at >= 6000 - 20, "the result must come from the attempt that began at the takeover"
    assert state.attempt == 2 and state.version == 2
    assert execution_id not in running_ids(client) and unfinished_of(client, SLOW) == 0


def test_a_runner_that_hangs_late_is_taken_over_without_the_repair_sweep(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """The holder of a long activity runs well for a while (the other runner reclaims its entry and is
    refused: the lease is live), then hangs: the entry, still pending, brings the other runner back as
    soon as the lease expires. The repair sweep is off, so nothing else could."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "3600000"
    runners = processes.fleet("first", "second", concurrency=1)
    execution_id = client.submit(SLOW, [12000, "late"]).execution_id
    holder = wait_for(lambda: client.get(execution_id).owner, what="a runner to lock it")
    (other,) = set(runners) - {holder}
    time.sleep(4)  # several reclaim rounds (every 0.5 s, entries idle > 2 s) meet the live lease
    assert client.get(execution_id).owner == holder
    os.kill(runners[holder].pid, signal.SIGSTOP)
    try:
        wait_for(lambda: client.get(execution_id).owner == other, timeout=20, what="the other runner to take over")
    finally:
        resume(runners[holder])
    state = client.wait(execution_id, 30)
    assert state.outcome is not None and state.outcome.value == "late"
    assert types(client.executions.events(execution_id)) == ["created", "attempt_lost", "finished"]


def test_stale_runner_of_a_workflows_direct_call(redis_url: str, processes: Processes, client: Client) -> None:
    """A workflow calls the 6 s activity directly (run inline by its runner); that runner is SIGSTOPped:
    the other runner takes over both, the child finishes once with its own result, the workflow once."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50)), fault_flows()])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "2000"
    runners = processes.fleet("first", "second", concurrency=2)
    workflow_id = client.submit(SLOW_CALL, [6000, "via-wf"]).execution_id
    child_id = wait_for(lambda: (c := client.executions.children(workflow_id)) and c[0], what="the child")
    holder = wait_for(lambda: client.get(child_id).owner, what="the child to run")
    (other,) = set(runners) - {holder}
    os.kill(runners[holder].pid, signal.SIGSTOP)
    try:
        wait_for(lambda: client.get(child_id).owner == other, timeout=20, what="the other runner to take over")
        assert child_id in running_ids(client) and unfinished_of(client, SLOW) == 1
    finally:
        resume(runners[holder])
    state = client.wait(workflow_id, 40)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == "via-wf"
    child_events = client.executions.events(child_id)
    assert types(child_events) == ["created", "attempt_lost", "finished"]
    assert child_events[1].data["owner"] == holder
    assert child_events[2].at - child_events[1].at >= 6000 - 20
    assert child_events[2].data.get("result") == "via-wf"
    events = client.executions.events(workflow_id)
    assert types(events).count("finished") == 1
    assert types(events).count("child_submitted") == 1
    assert [e.data["child_id"] for e in events if e.type == "response"] == [child_id]
    wait_for(lambda: "lease lost" in processes.log_of(runners[holder]), timeout=15, what="the stale write")
    assert not running_ids(client) & {workflow_id, child_id}


def test_new_owner_killed_and_no_runner_left(redis_url: str, processes: Processes, client: Client) -> None:
    """A directly-called child outlives its recovery timer; its runner is SIGKILLed, so only the repair
    sweep can bring the child back. The runner that takes over is SIGKILLed too, leaving none; a fresh
    runner started later finishes the workflow, the child once, on its third attempt."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50)), fault_flows()])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "2000"
    first = processes.runner("--concurrency", "2", "--name", "first")
    scheduler = processes.scheduler()
    processes.wait_ready(runners=1)
    workflow_id = client.submit(SLOW_CALL, [4000, "kept"]).execution_id
    child_id = wait_for(lambda: (c := client.executions.children(workflow_id)) and c[0], what="the child")
    wait_for(lambda: client.get(child_id).owner == "first", what="the child to run inline")

    def timer_of_child() -> bool:
        return any(child_id in m.decode() for m in indexes.zmembers(client.redis, "timers"))  # type: ignore[union-attr]

    # The recovery timer fires while the lease is alive (the lock is refused) and is removed; then the
    # entry it enqueued is lost too, so once the runner is gone nothing but the repair sweep knows
    # about the child.
    wait_for(timer_of_child, timeout=5, what="the child's recovery timer")
    wait_for(lambda: not timer_of_child(), timeout=10, what="the child's recovery timer to fire")
    for stream in indexes.shards_of(client.redis).queues(SLOW):
        client.redis.xtrim(stream, maxlen=0)
    assert client.get(child_id).owner == "first"
    kill(first)
    second = processes.runner("--concurrency", "2", "--name", "second")
    wait_for(lambda: client.get(child_id).owner == "second", timeout=20, what="the repair sweep to hand the child over")
    assert "re-enqueued executions" in processes.log_of(scheduler)
    kill(second)
    assert child_id in running_ids(client)
    assert workflow_id in {s.id for s in client.executions.list(active_only=True, limit=1000)[0]}
    processes.runner("--concurrency", "2", "--name", "third")
    state = client.wait(workflow_id, 45)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == "kept"
    child = client.get(child_id)
    assert child.attempt == 3
    child_events = client.executions.events(child_id)
    assert types(child_events) == ["created", "attempt_lost", "attempt_lost", "finished"]
    assert [e.data["owner"] for e in child_events if e.type == "attempt_lost"] == ["first", "second"]
    events = client.executions.events(workflow_id)
    assert types(events).count("finished") == 1 and types(events).count("child_submitted") == 1
