"""`Leases.finish_many`: a batch's finishes in one round trip, each fenced on its own."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis

from dolmen.platform.errors import FencedError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.write_calls import finish_write
from dolmen.platform.store.group import GroupCommit
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.records import Outcome
from dolmen.platform.store.scripts import Scripts

ACT = "t:p/i@1.0.0.act"


def locked(client: redis.Redis) -> Lease:
    execution = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
    ExecutionStore(client).create(execution)
    lease = Leases(client).lock(execution.id, "r1", 30_000)
    assert isinstance(lease, Lease)
    return lease


@pytest.mark.parametrize("grouped", [True, False], ids=["group-commit", "one-by-one"])
def test_each_finish_of_a_batch_is_fenced_on_its_own(client: redis.Redis, grouped: bool, request: pytest.FixtureRequest) -> None:
    """A lease lost in the middle of a batch fails only its own finish; the others are written with their results."""
    scripts = Scripts(client)
    group = GroupCommit(scripts) if grouped else None
    leases = Leases(client, scripts, group=group)
    if group is not None:
        request.addfinalizer(group.close)  # it holds a connection of the client's pool
    first, lost, last = locked(client), locked(client), locked(client)
    # Another runner took `lost` over: our fencing token is stale.
    stale = replace(lost, state=replace(lost.state, version=lost.state.version + 1))
    writes = [finish_write(lease, Outcome(value=n)) for n, lease in enumerate((first, stale, last))]
    results = leases.finish_many(writes)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], FencedError) and "taken over by another runner" in str(results[1])
    store = ExecutionStore(client)
    assert [store.get(lease.id).status for lease in (first, lost, last)] == ["finished", "running", "finished"]
    assert store.get(last.id).outcome == Outcome(value=2)
