"""`Leases`, the runner's view of the store: built like its `Sender`, and keeping what it learns of the queues per instance."""

from __future__ import annotations

import inspect

import redis

from dolmen.platform.ids import ExecutionId
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.deliveries import Deliveries
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.group import GroupCommit
from dolmen.platform.store.leases import Leases
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.sending import Sender
from tests.support import indexes

ACT = "t:p/leases@1.0.0.act"


def create(client: redis.Redis) -> str:
    new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
    ExecutionStore(client).create(new)
    return new.id


def test_leases_are_built_with_the_senders_constructor(client: redis.Redis) -> None:
    """`Leases` takes exactly `Sender`'s parameters (its own constructor), and each reaches the instance."""
    assert inspect.signature(Leases) == inspect.signature(Sender)
    scripts = Scripts(client)
    deliveries, group = Deliveries(scripts), GroupCommit(scripts)
    try:
        leases = Leases(client, scripts, resend_s=1.5, deliveries=deliveries, group=group)
        assert (leases.client, leases.scripts, leases.resend_s) == (client, scripts, 1.5)
        assert leases.deliveries is deliveries and leases.group is group and not leases.stopping.is_set()
    finally:
        deliveries.close()


def test_a_reader_creates_the_groups_it_lacks_and_again_those_the_store_lost(client: redis.Redis) -> None:
    """Each `Leases` creates the consumer groups it has not created itself; a queue that lost its group (NOGROUP)
    reads as empty once, and the next read creates the group again and gets the entry."""
    indexes.delete_queues(client, ACT)
    first = create(client)
    leases = Leases(client)
    assert [e.execution_id for e in leases.read("r1", [ACT], 10, 100)] == [first]
    # Another instance knows nothing of the first one's groups; it creates them (BUSYGROUP is no error) and reads.
    second = create(client)
    assert [e.execution_id for e in Leases(client).read("r2", [ACT], 10, 100)] == [second]
    indexes.delete_queues(client, ACT)  # what a flushed or failed-over store leaves
    third = create(client)  # the queue exists again, without the group
    assert leases.read("r1", [ACT], 10, 100) == []
    assert [e.execution_id for e in leases.read("r1", [ACT], 10, 100)] == [third]
    indexes.delete_queues(client, ACT)


def test_a_reclaim_on_a_queue_that_lost_its_group_takes_nothing_and_the_next_one_creates_it(client: redis.Redis) -> None:
    """A failover can lose a queue's consumer group (the runners' XGROUP CREATE never reached the replica):
    reclaiming there is no error that stops the runner's loop; it takes nothing, and the next reclaim and read
    create the group again and go on (the cluster test `test_a_workflow_whose_delay_timer_was_lost_wakes_up`)."""
    indexes.delete_queues(client, ACT)
    leases = Leases(client)
    first = create(client)
    assert [e.execution_id for e in leases.read("r1", [ACT], 10, 100)] == [first]
    indexes.delete_queues(client, ACT)  # the group is gone; the runner still thinks it created it
    second = create(client)
    assert leases.reclaim("r2", ACT, min_idle_ms=0) == []
    assert leases.reclaim("r2", ACT, min_idle_ms=0) == []  # the group exists again, with nothing read yet
    assert [e.execution_id for e in leases.read("r1", [ACT], 10, 100)] == [second]
    assert [e.execution_id for e in leases.reclaim("r2", ACT, min_idle_ms=0)] == [second]
    indexes.delete_queues(client, ACT)
