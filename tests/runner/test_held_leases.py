"""`HeldLeases` on a real Valkey: held leases stay alive, one taken over is lost, one cancelled meanwhile is stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from dolmen.platform.ids import ExecutionId
from dolmen.platform.runner.attempts import RunningAttempts
from dolmen.platform.runner.held_leases import HeldLeases
from dolmen.platform.store import keys
from dolmen.platform.store.connection import connect
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.limits import LimitGate
from dolmen.platform.store.scripts import Scripts

ACT = "t:p/held-leases@1.0.0.act"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect(redis_url)
    yield c
    c.close()


def locked(client: redis.Redis, leases: Leases, owner: str, ttl_ms: int) -> Lease:
    new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
    ExecutionStore(client).create(new)
    lease = leases.lock(new.id, owner, ttl_ms)
    assert isinstance(lease, Lease), lease
    return lease


def lock_until(client: redis.Redis, execution_id: str) -> int:
    return int(client.hget(keys.state(execution_id), "lock_until") or 0)


def test_a_held_lease_is_extended_and_one_taken_over_is_lost(client: redis.Redis) -> None:
    leases = Leases(client)
    held = HeldLeases(leases, LimitGate(Scripts(client), dict), RunningAttempts(), {}, ttl_ms=60_000)
    kept, taken = locked(client, leases, "runner-a", 1_000), locked(client, leases, "runner-a", 50)
    held.hold(kept)
    before = lock_until(client, kept.id)
    held.extend_once()
    assert lock_until(client, kept.id) >= before + 59_000, "extended by the TTL"
    assert not held.is_lost(kept.id)

    held.hold(taken)
    time.sleep(0.2)  # `taken`'s 50 ms lock ran out before any extension: another runner takes it over
    assert isinstance(leases.lock(taken.id, "runner-b", 30_000), Lease)
    held.extend_once()
    assert held.is_lost(taken.id) and not held.is_lost(kept.id)
    held.let_go(taken.id)
    assert not held.is_lost(taken.id), "forgotten once its attempt ended"


def test_a_cancellation_requested_meanwhile_stops_the_running_attempt(client: redis.Redis) -> None:
    leases = Leases(client)
    attempts = RunningAttempts()
    held = HeldLeases(leases, LimitGate(Scripts(client), dict), attempts, {}, ttl_ms=30_000)
    lease = locked(client, leases, "runner-a", 30_000)
    held.hold(lease)
    with attempts.attempt(lease.id, None) as interruption:
        ExecutionStore(client).cancel(lease.id)
        held.extend_once()  # as if the cancel message had been lost
        assert "cancelled while it ran" in str(interruption.due())
    assert not held.is_lost(lease.id)
