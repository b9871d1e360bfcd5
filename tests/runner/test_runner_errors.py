"""A bug in the runner around an attempt is written into the execution's log, not only the process log."""

from __future__ import annotations

import threading

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from dolmen.platform.runner.process import Runner
from dolmen.platform.runner.settings import RunnerSettings
from dolmen.platform.store import keys
from dolmen.platform.store.leases import QueueEntry
from tests.support.guests import DATA_DIR
from tests.support.platform import activity, deploy

DOUBLE = "testing:act/basic@1.0.0.double"


class Bug(RuntimeError):
    pass


def test_an_unexpected_runner_error_is_recorded_and_retried(redis_url: str, client: Client) -> None:
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=2, initial_backoff_ms=10))])
    execution_id = client.submit(DOUBLE, [21]).execution_id
    runner = Runner(RunnerSettings(redis_url, DATA_DIR, concurrency=1, name="buggy"))

    def broken(*args: object, **kwargs: object) -> None:
        raise Bug("the runner tripped over its own feet")

    runner.activities.run = broken  # type: ignore[method-assign]
    try:
        entry = QueueEntry(DOUBLE, "0-1", execution_id)
        for _ in range(2):
            ((locked, lease),) = runner._lock([entry])  # what the reader does before handing the entry over
            runner._inflight += 1
            runner._process(locked, lease)
            client.redis.hset(keys.state(execution_id), "not_before", 0)  # no need to wait for the retry timer
        runner.deliveries.flush()
    finally:
        runner.deliveries.close()
        runner.client.close()
    events = client.executions.events(execution_id)
    assert [e.type for e in events] == ["created", "attempt_failed", "finished"]
    failed = events[1].data
    assert failed["error"]["kind"] == "runner_error"
    assert "Bug: the runner tripped over its own feet" in failed["error"]["message"]
    assert "Traceback" in failed["traceback"] and "broken" in failed["traceback"]
    state = client.get(execution_id)
    assert state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "runner_error"
    assert "gave up after 2 attempts" in state.outcome.failure.message


def test_a_child_spawned_while_the_runner_stops_runs_in_the_calling_thread(redis_url: str) -> None:
    """Once the pool takes no new work, a join-set child created locked by this runner runs where it was spawned."""
    from dolmen.platform.store.creates import NewExecution

    runner = Runner(RunnerSettings(redis_url, DATA_DIR, concurrency=2, name="stopping"))
    ran: list[tuple[str, str]] = []
    runner._run_spawned = lambda new: ran.append((new.id, threading.current_thread().name))  # type: ignore[method-assign]
    try:
        runner._pool.shutdown(wait=True)
        new = NewExecution(id="E_01JD8X3K5QZ6V2N4M7P9R0S1T2.1", ffqn=DOUBLE, kind="activity", digest="sha256:x", params=[1])
        runner.spawn(new)
    finally:
        runner.deliveries.close()
        runner.client.close()
    assert ran == [("E_01JD8X3K5QZ6V2N4M7P9R0S1T2.1", threading.current_thread().name)]
