"""A bug in the runner around an attempt is written into the execution's log, not only the process log."""

from __future__ import annotations

from dolmen.platform.client import Client
from dolmen.platform.deploy.model import RetryPolicy
from dolmen.platform.runner.service import Runner, RunnerSettings
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
