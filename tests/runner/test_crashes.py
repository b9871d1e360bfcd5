"""Nothing is lost: killed runners, paused runners and a restarted Valkey."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from tests.support.platform import Processes, activity, deploy
from tests.support.polling import wait_for
from tests.support.servers import ValkeyForTests


SLOW = "testing:act/basic@1.0.0.slow"

pytestmark = pytest.mark.slow


def _finished_once(client: Client, execution_id: str) -> None:
    events = client.executions.events(execution_id)
    assert [e.type for e in events].count("finished") == 1, [e.type for e in events]


def test_killed_runner_loses_nothing(redis_url: str, processes: Processes, client: Client) -> None:
    """200 slow executions on two runners, one killed with SIGKILL midway: each finishes exactly once."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1500"
    victim = processes.runner("--concurrency", "4", "--name", "victim")
    processes.runner("--concurrency", "4")
    processes.scheduler()
    processes.wait_ready(runners=2)
    ids = [client.submit(SLOW, [60, f"job-{i}"]).execution_id for i in range(200)]

    def finished() -> int:
        return sum(1 for i in ids if client.get(i).status == "finished")

    wait_for(lambda: finished() >= 40, timeout=120, what="40 executions to finish")
    # Killed while it holds leases (a loaded machine may find it between two): those are what must be retried.
    wait_for(
        lambda: any(s.owner == "victim" and s.status == "running" for s in map(client.get, ids)),
        timeout=120, what="the victim to hold a lease",
    )  # fmt: skip
    os.kill(victim.pid, signal.SIGKILL)
    for i, execution_id in enumerate(ids):
        state = client.wait(execution_id, 120)
        assert state.status == "finished"
        assert state.outcome.value == f"job-{i}"  # type: ignore[union-attr]
        _finished_once(client, execution_id)
    retried = [i for i in ids if client.get(i).attempt > 1]
    assert retried, "the killed runner had work in flight that another runner should have retried"


def test_paused_runner_cannot_write_after_takeover(redis_url: str, processes: Processes, client: Client) -> None:
    """A runner stopped past its lock expiry is fenced: the one that took over writes the only result."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    first = processes.runner("--concurrency", "1", "--name", "first")
    processes.scheduler()
    processes.wait_ready(runners=1)
    execution_id = client.submit(SLOW, [2500, "done"]).execution_id
    wait_for(lambda: client.get(execution_id).owner == "first", what="the first runner to lock it")
    os.kill(first.pid, signal.SIGSTOP)
    try:
        processes.runner("--concurrency", "1", "--name", "second")
        wait_for(lambda: client.get(execution_id).owner == "second", timeout=30, what="the second runner to take over")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    state = client.wait(execution_id, 30)
    assert state.outcome.value == "done"  # type: ignore[union-attr]
    wait_for(lambda: "lease lost" in processes.log_of(first), timeout=15, what="the first runner to report its fenced write")
    _finished_once(client, execution_id)
    assert state.version >= 2


def test_restarted_valkey_keeps_pending_executions(own_valkey: ValkeyForTests, tmp_path: Path) -> None:
    """Executions pending when Valkey stops (append-only file) all finish once it is back."""
    url = own_valkey.url
    deploy(url, [activity(retry=RetryPolicy(max_attempts=10, initial_backoff_ms=100))])
    procs = Processes(url, tmp_path, env={"DOLMEN_LOCK_TTL_MS": "2000"})
    client = Client.connect(url)
    try:
        procs.runner("--concurrency", "2")
        procs.scheduler()
        procs.wait_ready(runners=1)
        ids = [client.submit(SLOW, [150, f"r{i}"]).execution_id for i in range(30)]
        wait_for(lambda: client.get(ids[2]).status == "finished", timeout=60, what="some progress")
        own_valkey.stop()
        own_valkey.start()
        for i, execution_id in enumerate(ids):
            state = client.wait(execution_id, 120)
            assert state.status == "finished", execution_id
            assert state.outcome.value == f"r{i}"  # type: ignore[union-attr]
            _finished_once(client, execution_id)
    finally:
        procs.stop()
        client.close()
