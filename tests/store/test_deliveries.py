"""Write-behind effects: delivered in batches after the write, and recovered by the sweep when the writer dies first."""

from __future__ import annotations


from collections import Counter

import pytest
import redis

from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys, outbox
from dolmen.platform.store.deliveries import Also, Deliveries
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.records import Outcome
from dolmen.platform.store.scripts import Scripts
from tests.support import indexes

ACT = "t:p/i@1.0.0.act"
WF = "t:p/i@1.0.0.wf"


class DiesBeforeDelivering(Deliveries):
    """A process killed right after its writes were accepted: nothing of their effects is sent."""

    def submit(self, root: str, messages: list[str], also: Also | None = None, *, mark: str | None = None) -> None:
        pass


def parent_with_child(client: redis.Redis, leases: Leases) -> tuple[str, Lease]:
    """A blocked workflow and its locked child activity."""
    store = ExecutionStore(client, leases.scripts)
    parent = NewExecution(id=ExecutionId.new().value, ffqn=WF, kind="workflow", digest="sha256:x", params=[])
    store.create(parent)
    client.hset(keys.state(parent.id), "status", "blocked")
    child = NewExecution(
        id=f"{parent.id}.1", ffqn=ACT, kind="activity", digest="sha256:x", params=[], parent=parent.id,
        state_extra={"js": "", "parent_ffqn": WF},
    )  # fmt: skip
    store.create(child)
    indexes.delete_queues(client, ACT, WF)
    lease = leases.lock(child.id, "r1", 30_000)
    assert isinstance(lease, Lease)
    return parent.id, lease


def queued(client: redis.Redis, ffqn: str) -> list[str]:
    return [f[b"id"].decode() for _, f in indexes.queue_entries(client, ffqn)]  # type: ignore[union-attr]


def test_effects_follow_the_write_in_the_background(client: redis.Redis) -> None:
    scripts = Scripts(client)
    deliveries = Deliveries(scripts)
    leases = Leases(client, scripts, deliveries=deliveries)
    try:
        parent, lease = parent_with_child(client, leases)
        leases.finish(lease, Outcome(value=1))
        assert deliveries.flush()
        assert queued(client, WF) == [parent]  # the parent was woken
        assert indexes.zscore(client, "active", lease.id) is None
        assert client.llen(keys.outbox(ExecutionId(parent).root)) == 0
    finally:
        deliveries.close()


def test_the_sweep_delivers_what_a_dead_writer_left(client: redis.Redis) -> None:
    """Effects through the outbox (as on a cluster): the dirty mark leads the sweep to what the writer did not deliver."""
    scripts = Scripts(client, direct=False)
    leases = Leases(client, scripts, deliveries=DiesBeforeDelivering(scripts))
    parent, lease = parent_with_child(client, leases)
    leases.finish(lease, Outcome(value=1))
    assert queued(client, WF) == []  # accepted, but its effects died with the writer
    assert outbox.sweep(scripts, older_than_ms=0) == 1
    assert queued(client, WF) == [parent]
    assert indexes.zcard(client, "dirty") == 0


def test_a_writer_that_dies_after_a_direct_write_leaves_nothing_to_deliver(client: redis.Redis) -> None:
    """On one server the script itself wakes the parent: nothing waits on the writer, no mark, no outbox."""
    if isinstance(client, redis.RedisCluster):
        pytest.skip("scripts carry out their own effects on one server only")
    scripts = Scripts(client)
    assert scripts.direct
    leases = Leases(client, scripts, deliveries=DiesBeforeDelivering(scripts))
    parent, lease = parent_with_child(client, leases)
    leases.finish(lease, Outcome(value=1))
    assert queued(client, WF) == [parent]
    assert client.llen(keys.outbox(ExecutionId(parent).root)) == 0 and indexes.zcard(client, "dirty") == 0
    assert outbox.sweep(scripts, older_than_ms=0) == 0


def test_the_next_write_carries_queued_effects_or_gives_them_back(client: redis.Redis) -> None:
    scripts = Scripts(client)
    deliveries = Deliveries(scripts, linger_s=60.0)  # the thread waits: only carrying sends
    try:
        deliveries.submit("E_X", [outbox.enqueue_msg(ACT, "E_A")])
        pipe = scripts.pipeline()
        carried = deliveries.carry(pipe)
        assert carried is not None and deliveries.pending == 0
        carried.failed()  # the write that carried them never reached the server
        assert deliveries.pending == 1
        pipe = scripts.pipeline()
        carried = deliveries.carry(pipe)
        assert carried is not None
        carried.sent(pipe.execute())
        assert queued(client, ACT) == ["E_A"]
    finally:
        deliveries.close()


def test_writers_remove_their_own_dirty_marks(client: redis.Redis) -> None:
    """Creates, locks, failed attempts, finishes and their parents' wake-ups leave no mark behind: no sweep needed."""
    scripts = Scripts(client)
    for deliveries in (None, Deliveries(scripts)):
        indexes.delete(client, "dirty")
        leases = Leases(client, scripts, deliveries=deliveries)
        parent, lease = parent_with_child(client, leases)
        leases.fail_attempt(lease, {"error": {"kind": "trap", "message": "x"}}, retry_at=0)
        again = leases.lock(lease.id, "r2", 30_000)
        assert isinstance(again, Lease)
        leases.finish(again, Outcome(value=1))
        if deliveries is not None:
            assert deliveries.flush()
            deliveries.close()
        assert queued(client, WF) == [parent]  # the effects were delivered
        assert indexes.zcard(client, "dirty") == 0


def test_a_mark_removed_by_its_writer_never_hides_another_writers_message(client: redis.Redis) -> None:
    """Writer A marked the tree, but its script runs only after writer B wrote, delivered and removed its mark.

    A dies then: its mark is still there, so the sweep delivers its message. (One
    mark per tree, removed by whoever delivered last, would have been B's to remove.)
    """
    scripts = Scripts(client, direct=False)  # the scripts' messages go through the outbox, as on a cluster
    root = ExecutionId.new().value
    indexes.delete_queues(client, ACT)
    mark_a = outbox.dirty_mark(root)
    pipe = scripts.pipeline()
    outbox.mark_dirty(pipe, mark_a)
    pipe.execute()
    mark_b, message_b = outbox.dirty_mark(root), outbox.enqueue_msg(ACT, "E_B")
    pipe = scripts.pipeline()
    outbox.mark_dirty(pipe, mark_b)
    pipe.rpush(keys.outbox(root), message_b)
    pipe.execute()
    outbox.deliver(scripts, root, [message_b], mark=mark_b)
    assert [m.decode() for m in indexes.zmembers(client, "dirty")] == [mark_a]  # type: ignore[union-attr]
    client.rpush(keys.outbox(root), outbox.enqueue_msg(ACT, "E_A"))  # A's script, then A dies
    assert outbox.sweep(scripts, older_than_ms=0) == 1
    assert queued(client, ACT) == ["E_B", "E_A"] and indexes.zcard(client, "dirty") == 0


def test_a_fan_outs_start_messages_go_out_grouped_per_key(client: redis.Redis) -> None:
    """2,500 children's enqueue, index and timer messages: each lands once, the outbox empties, in a few script calls."""
    scripts = Scripts(client)
    root = ExecutionId.new()
    indexes.delete_queues(client, ACT)
    children = [root.child(i).value for i in range(1, 2501)]
    messages = [m for cid in children for m in (outbox.enqueue_msg(ACT, cid), outbox.index_msg(cid, 1000))]
    messages.append(outbox.timer_msg(5000, outbox.timer_member("enqueue", ffqn=ACT, id=children[0])))
    messages.append(outbox.index_msg(f"{root.value}.9999", 1000, replaces=children[1]))
    client.rpush(keys.outbox(root.value), *messages)
    pipe = scripts.pipeline()
    later = outbox.queue_all(pipe, [outbox.Effects(root.value, messages)])
    # Per key (a shard's queue or index) at most 1,000 items a call; on one shard: 3 XADD calls, 3 + 3 ZADD NX
    # calls, 1 timer, then 6 LREM calls and 1 ZREM.
    shards = indexes.shards_of(client)

    def calls(ids: list[str]) -> int:
        per_shard = Counter(shards.of(i) for i in ids)
        return sum(-(-n // 1000) for n in per_shard.values())

    indexed = [*children, f"{root.value}.9999"]
    effects = calls(children) + 2 * calls(indexed) + 1
    if pipe.ordered:
        assert later == [] and len(pipe) == effects + 6 + 1
        pipe.execute()
    else:
        # A cluster runs each node's part at once: the ZREM of the replaced execution from `active` (another
        # shard's, maybe another master's), and the LREMs, go in a second round trip, once the effects are in.
        assert len(later) == 2 and len(pipe) == effects
        pipe.execute()
        assert client.llen(keys.outbox(root.value)) == len(messages)
        outbox.deliver_all(scripts, later)
    entries = indexes.queue_entries(client, ACT)
    assert sorted(fields[b"id"].decode() for _, fields in entries) == sorted(children)
    assert indexes.zmscore(client, "executions", children) == [1000.0] * len(children)
    # The replaced execution left `active` after the ZADDs put it there.
    assert indexes.zscore(client, "active", children[1]) is None and indexes.zscore(client, "active", children[2]) == 1000.0
    assert indexes.zscore(client, "timers", '{"ffqn": "t:p/i@1.0.0.act", "id": "%s", "op": "enqueue"}' % children[0]) == 5000.0
    assert client.llen(keys.outbox(root.value)) == 0
