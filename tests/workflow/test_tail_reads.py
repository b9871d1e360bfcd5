"""A workflow resumed by the runner that unloaded it reads only its log's tail (`workflow.held_logs`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dolmen.platform.client import Client
from dolmen.platform.runner.process import Runner
from dolmen.platform.runner.settings import RunnerSettings
from dolmen.platform.store import keys
from dolmen.platform.store.leases import Lease
from dolmen.platform.store.records import Event
from dolmen.platform.workflow.held_logs import EVENT_OVERHEAD, HeldLogs
from tests.support.guests import DATA_DIR
from tests.support.platform import Processes, deploy
from tests.support.polling import wait_for
from tests.workflow.test_continue_as_new import C, chain_workflow

NAPS = 12


@pytest.fixture
def runner(redis_url: str, processes: Processes) -> Iterator[Runner]:
    deploy(redis_url, [chain_workflow(blocking="unload")])
    processes.scheduler()
    runner = Runner(RunnerSettings(redis_url, DATA_DIR, concurrency=2, name="tails"))
    stop = threading.Event()
    thread = threading.Thread(target=runner.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        stop.set()
        thread.join(30)


def test_resuming_reads_only_the_tail_and_replays_the_same_log(runner: Runner, client: Client) -> None:
    execution_id = client.submit(f"{C}.naps", [NAPS, 1]).execution_id
    state = client.wait(execution_id, 120)
    assert state.outcome is not None and state.outcome.value == NAPS, state.to_json()
    types = [e.type for e in client.executions.events(execution_id)]
    assert types == ["created"] + ["delay_requested", "response"] * NAPS + ["finished"]
    # Every resume but the first found its log held by this runner (the only one).
    assert runner.workflows.held.tail_reads >= NAPS - 1
    assert execution_id not in [*runner.workflows.held._logs]  # pyright: ignore[reportPrivateUsage]


def test_a_lock_with_a_held_log_that_is_not_the_logs_start_reads_it_all(runner: Runner, client: Client) -> None:
    execution_id = client.submit(f"{C}.naps", [2, 60_000]).execution_id
    leases = runner.leases

    def blocked() -> bool:
        return client.redis.hget(keys.state(execution_id), "status") == b"blocked"

    wait_for(blocked, timeout=30)
    whole = client.executions.events(execution_id)
    assert len(whole) == 2
    client.redis.hset(keys.state(execution_id), "status", "pending")  # lockable again by this test
    # What a runner holding the first event gets: that event, then the tail read after it.
    lease = leases.lock(execution_id, "test-a", 60_000, known=whole[:1])
    assert isinstance(lease, Lease) and lease.tail_only and lease.events == whole
    # A held log longer than the log (or otherwise not its start) is not trusted: the whole log comes back.
    bogus = [*whole, Event(2, "response", {"delay_id": "x"}, 0, "99999999999999-0")]
    client.redis.hset(keys.state(execution_id), mapping={"status": "pending", "lock_until": 0})
    again = leases.lock(execution_id, "test-b", 60_000, known=bogus)
    assert isinstance(again, Lease) and not again.tail_only and again.events == whole


def test_held_logs_stay_within_their_bound() -> None:
    held = HeldLogs(max_bytes=3 * (100 + EVENT_OVERHEAD) * 10)
    log = [Event(i, "join_set_created", {}, 0, f"{i + 1}-0", size=100) for i in range(10)]
    for n in range(5):
        held.keep(f"E_{n}", log)
    assert len(held) == 3 and held.held_bytes <= held.max_bytes
    assert held.take("E_0") is None and held.take("E_4") == tuple(log) and len(held) == 2
    held.keep("E_gap", log[1:])  # not the log's start (indexes from 1): never held
    assert held.take("E_gap") is None
