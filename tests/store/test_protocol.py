"""The write protocol through the store's own API, with a real TCP fault proxy in front of Valkey.

- A reply lost after the script ran: redis-py sends the write again and the
  log still holds each event once (`delay_requested` twice was the bug).
- A stale runner's refused write leaves the queue entry, the `active` index
  and the outbox as they were.
- The repair sweep re-enqueues an execution that lost its queue entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from dolmen.platform.errors import FencedError, LogWentBackError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys, outbox
from dolmen.platform.store.connection import connect
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.records import Outcome
from dolmen.platform.store.repair import RepairSweep
from dolmen.platform.store.scripts import Scripts
from tests.support.faultproxy import FaultProxy, proxy_to
from tests.support import indexes

ACT = "t:p/i@1.0.0.act"
WF = "t:p/i@1.0.0.wf"


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    with proxy_to(redis_url) as p:
        yield p


@pytest.fixture
def direct(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def leases(proxy: FaultProxy) -> Iterator[Leases]:
    """A runner's store view whose every command goes through the proxy."""
    client = connect(proxy.url)
    yield Leases(client, Scripts(client))
    client.close()


def new(kind: str = "workflow", execution_id: str | None = None, ffqn: str = WF) -> NewExecution:
    return NewExecution(
        id=execution_id or ExecutionId.new().value, ffqn=ffqn, kind=kind, digest="sha256:x", params=[1]  # type: ignore[arg-type]
    )


def types(direct: redis.Redis, execution_id: str) -> list[str]:
    return [f[b"t"].decode() for _, f in direct.xrange(keys.log(execution_id))]  # type: ignore[union-attr]


def locked(leases: Leases, store: ExecutionStore, execution: NewExecution, owner: str = "r1", ttl: int = 30_000) -> Lease:
    store.create(execution)
    lease = leases.lock(execution.id, owner, ttl)
    assert isinstance(lease, Lease)
    return lease


def test_lost_reply_of_a_commit_appends_each_request_once(
    direct: redis.Redis, leases: Leases, proxy: FaultProxy
) -> None:
    store = ExecutionStore(direct)
    wf = new()
    lease = locked(leases, store, wf)
    assert lease.events is not None
    delay = ("delay_requested", {"join_set": None, "delay_id": f"{wf.id}.d1", "duration_ms": 5, "until": now_ms() + 5}, now_ms())
    child = NewExecution(
        id=f"{wf.id}.1", ffqn=ACT, kind="activity", digest="sha256:x", params=[2], parent=wf.id,
        state_extra={"js": "", "parent_ffqn": WF},
    )  # fmt: skip
    submitted = ("child_submitted", {"join_set": None, "child_id": child.id, "ffqn": ACT, "params": [2]}, now_ms())
    proxy.drop_next_reply(b"EVALSHA")
    tail = leases.commit(lease, [delay, submitted], [child], last_seen=lease.events[-1].stream_id, first_index=1)
    assert proxy.dropped_replies == 1
    assert [e.type for e in tail] == ["delay_requested", "child_submitted"]
    assert types(direct, wf.id) == ["created", "delay_requested", "child_submitted"]
    assert types(direct, child.id) == ["created"]
    assert indexes.queue_len(direct, ACT) == 1  # the child was enqueued once
    assert indexes.zscore(direct, "active", child.id) is not None


def test_lost_reply_of_a_finish_is_not_mistaken_for_a_takeover(
    direct: redis.Redis, leases: Leases, proxy: FaultProxy
) -> None:
    store = ExecutionStore(direct)
    act = new("activity", ffqn=ACT)
    lease = locked(leases, store, act)
    proxy.drop_next_reply(b"EVALSHA")
    leases.finish(lease, Outcome(value=7))  # would raise FencedError('finished') without write ids
    assert proxy.dropped_replies == 1
    assert types(direct, act.id) == ["created", "finished"]
    assert indexes.zscore(direct, "active", act.id) is None


def test_lost_reply_of_a_failed_attempt_and_of_a_lock(direct: redis.Redis, leases: Leases, proxy: FaultProxy) -> None:
    store = ExecutionStore(direct)
    act = new("activity", ffqn=ACT)
    store.create(act)
    proxy.drop_next_reply(b"EVALSHA")
    lease = leases.lock(act.id, "r1", 30_000)
    assert isinstance(lease, Lease), lease  # the repeat is the same lease, not 'locked'
    assert lease.version == "1"
    proxy.drop_next_reply(b"EVALSHA")
    leases.fail_attempt(lease, {"error": {"kind": "trap", "message": "x"}}, now_ms() + 60_000)
    assert types(direct, act.id) == ["created", "attempt_failed"]
    assert indexes.zcard(direct, "timers") == 1


def test_lost_reply_of_a_block(direct: redis.Redis, leases: Leases, proxy: FaultProxy) -> None:
    store = ExecutionStore(direct)
    wf = new()
    lease = locked(leases, store, wf)
    proxy.drop_next_reply(b"EVALSHA")
    assert leases.block(lease, 1) == "blocked"
    assert direct.hget(keys.state(wf.id), "status") == b"blocked"


def test_lost_reply_of_a_create_and_a_cancel(direct: redis.Redis, proxy: FaultProxy) -> None:
    through = connect(proxy.url)
    store = ExecutionStore(through)
    wf = new()
    proxy.drop_next_reply(b"EVALSHA")
    assert store.create(wf).created  # the repeat answers 'created', not 'exists'
    proxy.drop_next_reply(b"EVALSHA")
    assert store.cancel(wf.id) == "requested"
    assert types(direct, wf.id) == ["created", "cancel_requested"]
    through.close()


def test_a_stale_runners_refused_finish_changes_nothing(direct: redis.Redis, leases: Leases) -> None:
    """The fenced finish must not ack the queue entry the new owner holds, nor touch the indexes."""
    store = ExecutionStore(direct)
    act = new("activity", ffqn=ACT)
    store.create(act)
    leases.ensure_groups([ACT])
    (entry,) = leases.read("r1", [ACT], 10, 100)
    stale = leases.lock(act.id, "r1", 1)
    assert isinstance(stale, Lease)
    assert not stale.state.took_over  # nobody held it before
    import time

    time.sleep(0.01)
    taken = leases.lock(act.id, "r2", 30_000)
    assert isinstance(taken, Lease)
    assert taken.state.took_over  # what the runner counts as a lock takeover (a metric)
    pending_before = direct.xpending(indexes.queue_key(direct, ACT, act.id), keys.QUEUE_GROUP)
    with pytest.raises(FencedError):
        leases.finish(stale, Outcome(value="stale"), entries=[entry])
    assert direct.xpending(indexes.queue_key(direct, ACT, act.id), keys.QUEUE_GROUP) == pending_before
    assert indexes.queue_len(direct, ACT) == 1
    assert indexes.zscore(direct, "active", act.id) is not None
    assert types(direct, act.id) == ["created", "attempt_lost"]
    leases.finish(taken, Outcome(value="new owner"), entries=[entry])
    assert types(direct, act.id) == ["created", "attempt_lost", "finished"]
    assert indexes.zscore(direct, "active", act.id) is None


def walk(sweep: RepairSweep, now: int) -> int:
    """One step per shard: the whole active index, whichever shard the execution is in."""
    return sum(sweep.step(now) for _ in range(sweep.scripts.shards.count))


def test_repair_sweep_requeues_what_lost_its_queue_entry(direct: redis.Redis) -> None:
    scripts = Scripts(direct)
    store = ExecutionStore(direct, scripts)
    act = new("activity", ffqn=ACT)
    store.create(act)
    indexes.delete_queues(direct, ACT)  # the entry is gone (acked by a stale runner, say)
    sweep = RepairSweep(direct, scripts, stale_ms=1000)
    assert walk(sweep, now_ms()) == 0  # not stale yet
    assert walk(sweep, now_ms() + 5000) == 1
    assert [f[b"id"].decode() for _, f in indexes.queue_entries(direct, ACT)] == [act.id]
    assert walk(sweep, now_ms() + 5000) == 0  # marked: not again until stale again


def test_repair_sweep_requeues_an_expired_lease_and_drops_finished(direct: redis.Redis, leases: Leases) -> None:
    scripts = Scripts(direct)
    store = ExecutionStore(direct, scripts)
    running, done = new("activity", ffqn=ACT), new("activity", ffqn=ACT)
    locked(leases, store, running, ttl=1)
    lease = locked(leases, store, done)
    leases.finish(lease, Outcome(value=1))
    indexes.zadd(direct, "active", {done.id: 1})  # as if the writer died before removing it
    indexes.delete_queues(direct, ACT)
    sweep = RepairSweep(direct, scripts, stale_ms=1000)
    assert walk(sweep, now_ms() + 5000) == 1
    assert indexes.zscore(direct, "active", done.id) is None
    assert [f[b"id"].decode() for _, f in indexes.queue_entries(direct, ACT)] == [running.id]


def test_repair_sweep_arms_again_the_lost_timer_of_a_blocked_workflow(direct: redis.Redis, leases: Leases) -> None:
    """A durable sleep's timer gone (a failover lost it, say): well past its time the sweep arms it again, the same member."""
    scripts = Scripts(direct)
    store = ExecutionStore(direct, scripts)
    wf = new()
    lease = locked(leases, store, wf)
    at = now_ms()
    delay = {"join_set": None, "delay_id": f"{wf.id}.d1", "duration_ms": 100, "until": at + 100}
    timer = outbox.timer_msg(at + 100, outbox.delay_member(wf.id, WF, f"{wf.id}.d1", None))
    leases.commit(lease, [("delay_requested", delay, at)], [], last_seen="0-0", first_index=0, messages=[timer])
    armed = indexes.zmembers(direct, "timers", withscores=True)
    assert len(armed) == 1
    assert leases.block(lease, 2, wake_at=at + 100) == "blocked"
    assert direct.hget(keys.state(wf.id), "wake_at") == str(at + 100).encode()
    indexes.delete(direct, "timers")
    sweep = RepairSweep(direct, scripts, stale_ms=1000)
    walk(sweep, at + 1000)
    assert indexes.zmembers(direct, "timers") == []  # it may still fire: not yet
    walk(sweep, at + 1200)
    assert indexes.zmembers(direct, "timers", withscores=True) == armed
    assert sweep.rearmed == 1
    # Delivered (the response is in its log): nothing to arm again, even if the sweep comes by.
    indexes.delete(direct, "timers")
    direct.xadd(keys.log(wf.id), {"t": "response", "d": json.dumps({"delay_id": f"{wf.id}.d1", "join_set": None}), "at": at + 200})
    walk(sweep, at + 5000)
    assert indexes.zmembers(direct, "timers") == []


def test_a_write_on_a_log_that_went_back_is_refused_and_the_workflow_queued_to_replay(direct: redis.Redis, leases: Leases) -> None:
    """A failover lost log entries a runner had read (here XDEL stands in for it): its commit, finish and block
    refuse to write on from what it remembers; the lease is released and the workflow queued, to replay the log."""
    scripts = Scripts(direct)
    store = ExecutionStore(direct, scripts)
    for write in ("commit", "finish", "block"):
        wf = new()
        lease = locked(leases, store, wf)
        at = now_ms()
        tail = leases.commit(lease, [("join_set_created", {"join_set": "g1"}, at)], [], last_seen="0-0", first_index=0)
        read = store.events(wf.id)
        assert len(read) == 2 and tail[-1].stream_id == read[-1].stream_id
        direct.xdel(keys.log(wf.id), read[-1].stream_id)  # what a failover took back
        indexes.delete_queues(direct, WF)
        last = read[-1].stream_id
        if write == "commit":
            with pytest.raises(LogWentBackError):
                leases.commit(lease, [("join_next", {"join_set": "g1"}, at)], [], last_seen=last, first_index=2)
        elif write == "finish":
            with pytest.raises(LogWentBackError):
                leases.finish(lease, Outcome(value=1), log_seen=(last, 2))
        else:
            assert leases.block(lease, 2, last_seen=last) == "requeued"
        assert types(direct, wf.id) == ["created"], write  # nothing written on top
        state = direct.hgetall(keys.state(wf.id))
        assert (state[b"status"], state[b"owner"]) == (b"pending", b""), write
        assert indexes.queued(direct, WF) == [wf.id], write
    # The same writes on a log that holds what was read go through.
    wf = new()
    lease = locked(leases, store, wf)
    tail = leases.commit(lease, [("join_set_created", {"join_set": "g1"}, now_ms())], [], last_seen="0-0", first_index=0)
    leases.finish(lease, Outcome(value=1), log_seen=(tail[-1].stream_id, 2))
    assert types(direct, wf.id) == ["created", "join_set_created", "finished"]
