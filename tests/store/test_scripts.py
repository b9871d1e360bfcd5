"""Every write script on a real Valkey: it succeeds, a refusal changes no key at all, and a repeat is answered as the first.

The repeat is what redis-py sends when a reply was lost: the same script
with the same write id. `snapshot` reads every key in the server, so "no
side effect" means exactly that.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dolmen.platform.store import keys
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.shards import Shards
from tests.support import indexes

E = "E_01JTESTSCRIPTS000000000000"
CHILD = f"{E}.1"
NOW = 1_700_000_000_000


@pytest.fixture(params=[False, True], ids=["outbox", "direct"])
def scripts(client: redis.Redis, request: pytest.FixtureRequest) -> Scripts:
    """Both kinds of write scripts: effects left in the outbox (a cluster's), or carried out by the script (one server's)."""
    return Scripts(client, shards=Shards(1), direct=request.param)


def snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key with its full content."""
    out: dict[str, Any] = {}
    for raw in sorted(client.scan_iter(count=1000)):  # type: ignore[type-var]
        key = raw.decode()
        kind = client.type(key).decode()  # type: ignore[union-attr]
        if kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "stream":
            out[key] = client.xrange(key)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = client.get(key)
    return out


def state_fields(execution_id: str, kind: str = "activity", **extra: str) -> list[str]:
    fields = {
        "id": execution_id, "ffqn": "t:p/i@1.0.0.f", "kind": kind, "digest": "sha256:x", "status": "pending",
        "version": "0", "attempt": "0", "created_at": str(NOW), "updated_at": str(NOW), "params": "[]",
        "parent": "", "not_before": "0", **extra,
    }  # fmt: skip
    return [x for kv in fields.items() for x in kv]


def create(scripts: Scripts, execution_id: str = E, kind: str = "activity", wid: str = "c1", **extra: str) -> Any:
    root = keys.root_of(execution_id)
    return scripts(
        "create",
        [keys.state(execution_id), keys.log(execution_id), keys.outbox(root)],
        [wid, json.dumps({"ffqn": "t:p/i@1.0.0.f"}), NOW, 1, "msg", *state_fields(execution_id, kind, **extra)],
    )


def lock(scripts: Scripts, wid: str = "l1", owner: str = "r1", now: int = NOW, ttl: int = 1000, eid: str = E) -> Any:
    return scripts("lock", [keys.state(eid), keys.log(eid)], [wid, owner, now, ttl])


def log_types(client: redis.Redis, eid: str = E) -> list[str]:
    return [fields[b"t"].decode() for _, fields in client.xrange(keys.log(eid))]  # type: ignore[union-attr]


def assert_refused_without_effect(client: redis.Redis, call: Any, reason: str) -> None:
    before = snapshot(client)
    reply = call()
    assert reply[0].decode() == reason
    assert snapshot(client) == before


# ----------------------------------------------------------------- create


def test_create_once_then_repeat_then_conflict(client: redis.Redis, scripts: Scripts) -> None:
    assert create(scripts) == [b"created"]
    after = snapshot(client)
    assert create(scripts) == [b"created"]  # the same write re-sent
    assert snapshot(client) == after
    reply = create(scripts, wid="other")
    assert reply[0] == b"exists"
    assert snapshot(client) == after
    assert log_types(client) == ["created"]
    assert client.lrange(keys.outbox(E), 0, -1) == [b"msg"]


# ------------------------------------------------------------------- lock


def test_lock_repeat_and_refusals(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts)
    first = lock(scripts)
    assert first[0] == b"ok"
    after = snapshot(client)
    again = lock(scripts)  # re-sent: same lease, version not bumped again
    assert again[0] == b"ok"
    assert snapshot(client) == after
    assert client.hget(keys.state(E), "version") == b"1"
    assert_refused_without_effect(client, lambda: lock(scripts, wid="l2", owner="r2", now=NOW + 10), "locked")


def test_taking_over_an_expired_lease_logs_and_counts_the_lost_attempt(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts)
    lock(scripts, ttl=1000)
    reply = lock(scripts, wid="l2", owner="r2", now=NOW + 5000)
    assert reply[0] == b"ok"
    state = client.hgetall(keys.state(E))
    assert state[b"attempt"] == b"2" and state[b"version"] == b"2" and state[b"owner"] == b"r2"
    types = log_types(client)
    assert types == ["created", "attempt_lost"]
    lost = json.loads(client.xrange(keys.log(E))[-1][1][b"d"])  # type: ignore[index]
    assert lost == {"attempt": 1, "owner": "r1", "lock_until": NOW + 1000}
    # The lock that took over is marked (a runner counts its takeovers); a repeat of it still is.
    assert state[b"lost_v"] == b"2"
    assert lock(scripts, wid="l2", owner="r2", now=NOW + 5000)[0] == b"ok"
    assert client.hget(keys.state(E), "lost_v") == b"2"


def test_scripts_unknown_to_the_server_are_loaded_again_alone_and_in_pipelines(client: redis.Redis, scripts: Scripts) -> None:
    """After SCRIPT FLUSH (a restarted or flushed server) a call on its own and a pipelined call both go through, once."""
    create(scripts)
    client.script_flush()
    assert lock(scripts)[0] == b"ok"  # redis-py's Script: NOSCRIPT, SCRIPT LOAD, EVALSHA again
    client.script_flush()
    pipe = scripts.pipeline()
    pipe.hget(keys.state(E), "version")
    at = pipe.script("lock", [keys.state(E), keys.log(E)], ["l1", "r1", NOW, 1000])  # a repeat: the same lease
    pipe.hget(keys.state(E), "version")
    replies = pipe.execute()
    assert replies[at][0] == b"ok"
    assert replies[0] == replies[2] == b"1"  # the other commands were sent once, and the lock was not taken twice
    assert client.script_exists(scripts.sha("lock")) == [True]


def test_lock_refuses_finished_blocked_early_missing_without_effect(client: redis.Redis, scripts: Scripts) -> None:
    assert_refused_without_effect(client, lambda: lock(scripts), "missing")
    create(scripts, not_before=str(NOW + 60_000))
    assert_refused_without_effect(client, lambda: lock(scripts), "early")
    client.hset(keys.state(E), "status", "blocked")
    assert_refused_without_effect(client, lambda: lock(scripts), "blocked")
    client.hset(keys.state(E), "status", "finished")
    assert_refused_without_effect(client, lambda: lock(scripts), "finished")


# ----------------------------------------------------------------- extend


def test_extend_fenced_and_repeatable(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts)
    lock(scripts)
    assert scripts("extend", [keys.state(E)], ["r1", "1", NOW + 100, 1000])[0] == b"ok"
    after = snapshot(client)
    assert scripts("extend", [keys.state(E)], ["r1", "1", NOW + 100, 1000])[0] == b"ok"
    assert snapshot(client) == after
    assert_refused_without_effect(client, lambda: scripts("extend", [keys.state(E)], ["r0", "1", NOW, 1000]), "fenced")


# ----------------------------------------------------------------- commit


def commit(scripts: Scripts, wid: str, owner: str = "r1", version: str = "1", last_seen: str = "0-0") -> Any:
    spec = {
        "events": [["delay_requested", json.dumps({"delay_id": f"{E}.d1"}), str(NOW)]],
        "creates": [{"created": json.dumps({"ffqn": "c"}), "fields": state_fields(CHILD)}],
        "outbox": ["start-child"],
        "state": [],
    }
    return scripts(
        "commit",
        [keys.state(E), keys.log(E), keys.outbox(E), keys.state(CHILD), keys.log(CHILD)],
        [wid, owner, version, NOW, json.dumps(spec), last_seen],
    )


def test_commit_appends_once_even_when_re_sent(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts, kind="workflow")
    lock(scripts)
    last = client.xrange(keys.log(E))[-1][0].decode()  # type: ignore[index]
    first = commit(scripts, "w1", last_seen=last)
    assert first[0] == b"ok" and len(first[1]) == 1
    after = snapshot(client)
    again = commit(scripts, "w1", last_seen=last)
    assert again[0] == b"ok" and again[1] == first[1]  # answered with the same tail
    assert snapshot(client) == after
    assert log_types(client) == ["created", "delay_requested"]
    assert log_types(client, CHILD) == ["created"]


def test_commit_refused_changes_nothing(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts, kind="workflow")
    lock(scripts)
    assert_refused_without_effect(client, lambda: commit(scripts, "w1", owner="stale"), "fenced")
    assert_refused_without_effect(client, lambda: commit(scripts, "w1", version="0"), "fenced")
    client.hset(keys.state(CHILD), "id", CHILD)  # a child that exists already
    assert_refused_without_effect(client, lambda: commit(scripts, "w2"), "conflict")


# --------------------------------------------------------- finish and fail


def finish(scripts: Scripts, wid: str, owner: str = "r1", tail_after: str = "") -> Any:
    return scripts(
        "finish",
        [keys.state(CHILD), keys.log(CHILD), keys.outbox(E), keys.state(E), keys.log(E), keys.done(E)],
        [wid, owner, "1", NOW, json.dumps({"ok": 1}), json.dumps({"ok": 1}), CHILD,
         json.dumps({"child_id": CHILD, "ok": 1}), "wake-parent", "", "", "", tail_after],
    )  # fmt: skip


def parent_and_child(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts, kind="workflow")
    client.hset(keys.state(E), "status", "blocked")
    create(scripts, CHILD, parent=E)
    lock(scripts, eid=CHILD)


def test_finish_answers_the_parent_once_even_when_re_sent(client: redis.Redis, scripts: Scripts) -> None:
    parent_and_child(client, scripts)
    first = finish(scripts, "f1")
    assert first[:3] == [b"ok", 1, 0]
    after = snapshot(client)
    again = finish(scripts, "f1")
    assert again[:3] == [b"ok", 1, 0]  # not 'finished': the runner learns its write landed
    assert snapshot(client) == after
    assert log_types(client, CHILD) == ["created", "finished"]
    assert log_types(client) == ["created", "response"]
    assert client.hget(keys.state(E), "status") == b"pending"


def test_finish_repeat_returns_the_parent_tail(client: redis.Redis, scripts: Scripts) -> None:
    parent_and_child(client, scripts)
    created_id = client.xrange(keys.log(E))[0][0].decode()  # type: ignore[index]
    first = finish(scripts, "f1", tail_after=created_id)
    again = finish(scripts, "f1", tail_after=created_id)
    assert len(first[3]) == 1 and again[3] == first[3]


def test_stale_finish_changes_nothing(client: redis.Redis, scripts: Scripts) -> None:
    parent_and_child(client, scripts)
    assert_refused_without_effect(client, lambda: finish(scripts, "f1", owner="stale"), "fenced")


def fail(scripts: Scripts, wid: str, owner: str = "r1") -> Any:
    return scripts(
        "fail", [keys.state(E), keys.log(E), keys.outbox(E)], [wid, owner, "1", NOW, json.dumps({"attempt": 1}), NOW + 100, "timer"]
    )


def test_fail_once_even_when_re_sent_and_fenced_without_effect(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts)
    lock(scripts)
    assert_refused_without_effect(client, lambda: fail(scripts, "x", owner="stale"), "fenced")
    assert fail(scripts, "f1") == [b"ok"]
    after = snapshot(client)
    assert fail(scripts, "f1") == [b"ok"]
    assert snapshot(client) == after
    assert log_types(client) == ["created", "attempt_failed"]
    assert client.lrange(keys.outbox(E), 0, -1) == [b"msg", b"timer"]


# ------------------------------------------------------------------ block


def block(scripts: Scripts, wid: str, seen: int, owner: str = "r1") -> Any:
    return scripts("block", [keys.state(E), keys.log(E), keys.outbox(E)], [wid, owner, "1", NOW, seen, "requeue"])


def test_block_repeat_and_refusal(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts, kind="workflow")
    lock(scripts)
    assert_refused_without_effect(client, lambda: block(scripts, "b0", 1, owner="stale"), "fenced")
    assert block(scripts, "b1", 1) == [b"blocked"]
    after = snapshot(client)
    assert block(scripts, "b1", 1) == [b"blocked"]  # not 'fenced' although the owner is cleared
    assert snapshot(client) == after


def test_block_requeues_when_the_log_grew(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts, kind="workflow")
    lock(scripts)
    assert block(scripts, "b1", 0) == [b"requeued"]
    assert block(scripts, "b1", 0) == [b"requeued"]
    assert client.lrange(keys.outbox(E), 0, -1) == [b"msg", b"requeue"]


# ----------------------------------------------------------------- cancel


def cancel(scripts: Scripts, wid: str, eid: str = E) -> Any:
    return scripts(
        "cancel",
        [keys.state(eid), keys.log(eid), keys.outbox(E), keys.state(E), keys.log(E), keys.done(E)],
        [wid, NOW, json.dumps({"reason": "r"}), "self", json.dumps({"err": 1}), json.dumps({"err": 1}), "", "{}", ""],
    )


def test_cancel_once_even_when_re_sent(client: redis.Redis, scripts: Scripts) -> None:
    assert_refused_without_effect(client, lambda: cancel(scripts, "k0"), "missing")
    create(scripts, kind="workflow")
    assert cancel(scripts, "k1") == [b"requested", 1]
    after = snapshot(client)
    assert cancel(scripts, "k1") == [b"requested", 1]
    assert snapshot(client) == after
    assert cancel(scripts, "k2")[0] == b"already"
    assert log_types(client) == ["created", "cancel_requested"]


def test_cancel_of_a_pending_activity_finishes_it_once(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts)
    assert cancel(scripts, "k1") == [b"cancelled", 0]
    assert cancel(scripts, "k1") == [b"cancelled", 0]
    assert log_types(client) == ["created", "cancel_requested", "finished"]
    assert_refused_without_effect(client, lambda: cancel(scripts, "k2"), "finished")


def test_cancel_of_a_waiting_stub_finishes_it_at_once(client: redis.Redis, scripts: Scripts) -> None:
    """A stub is never run, so nobody else would finish it: cancel does, as for a pending activity."""
    create(scripts, kind="stub", status="blocked")
    assert cancel(scripts, "k1") == [b"cancelled", 0]
    assert log_types(client) == ["created", "cancel_requested", "finished"]
    assert client.hget(keys.state(E), "status") == b"finished"


# ---------------------------------------------------------------- complete (stubs)


def complete(scripts: Scripts, wid: str, eid: str = CHILD, value: object = "v") -> Any:
    """The result `value` supplied for stub `eid` (a child of E answers E)."""
    parent = eid != E
    outcome = json.dumps({"result": value})
    return scripts(
        "complete",
        [keys.state(eid), keys.log(eid), keys.outbox(E), keys.state(E), keys.log(E), keys.done(E)],
        [wid, NOW, outcome, outcome, eid if parent else "", json.dumps({"child_id": eid, "result": value}) if parent else "{}",
         "wake" if parent else "", "" if parent else "expire"],
    )  # fmt: skip


def test_complete_finishes_a_stub_once_and_answers_its_parent(client: redis.Redis, scripts: Scripts) -> None:
    """A supplied result finishes a waiting stub and wakes its blocked parent; a repeat changes nothing."""
    create(scripts, kind="workflow", status="blocked")
    create(scripts, CHILD, kind="stub", status="blocked")
    assert_refused_without_effect(client, lambda: complete(scripts, "r0", f"{E}.9"), "missing")
    assert complete(scripts, "r1") == [b"ok", 1]
    after = snapshot(client)
    assert complete(scripts, "r1") == [b"ok", 1]  # re-sent after a lost reply
    assert snapshot(client) == after
    assert log_types(client, CHILD) == ["created", "finished"]
    assert log_types(client) == ["created", "response"]
    assert client.hget(keys.state(E), "status") == b"pending"
    assert client.lrange(keys.outbox(E), 0, -1)[-1] == b"wake"
    # Finished: another write changes nothing, and the reply carries the recorded outcome to compare.
    before = snapshot(client)
    assert complete(scripts, "r2", value="other") == [b"finished", b'{"result": "v"}']
    assert snapshot(client) == before


def test_complete_refuses_what_is_not_a_stub_without_effect(client: redis.Redis, scripts: Scripts) -> None:
    """Activities and workflows finish by running: a supplied result is refused and writes nothing."""
    create(scripts, kind="workflow")
    create(scripts, CHILD, kind="activity")
    assert_refused_without_effect(client, lambda: complete(scripts, "r1"), "not_stub")
    assert_refused_without_effect(client, lambda: complete(scripts, "r2", E), "not_stub")


def test_complete_of_a_root_stub_starts_its_retention(client: redis.Redis, scripts: Scripts) -> None:
    """A root stub has no parent to answer; its finish writes its tree's retention message."""
    create(scripts, kind="stub", status="blocked")
    assert complete(scripts, "r1", E) == [b"ok", 0]
    assert client.lrange(keys.outbox(E), 0, -1)[-1] == b"expire"
    assert client.hget(keys.state(E), "status") == b"finished"


# ---------------------------------------------------------------- upgrade


def upgrade(scripts: Scripts, wid: str, seen: int, now: int = NOW) -> Any:
    return scripts(
        "upgrade", [keys.state(E), keys.log(E)], [wid, "sha256:x", "sha256:y", seen, now, "upgraded", "{}", "2", "c"]
    )


def test_upgrade_once_even_when_re_sent_and_refusals_without_effect(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts, kind="workflow")
    lock(scripts, ttl=60_000)
    assert_refused_without_effect(client, lambda: upgrade(scripts, "u0", 1), "busy")
    assert_refused_without_effect(client, lambda: upgrade(scripts, "u0", 5, now=NOW + 120_000), "grew")
    assert upgrade(scripts, "u1", 1, now=NOW + 120_000) == [b"ok"]
    after = snapshot(client)
    assert upgrade(scripts, "u1", 1, now=NOW + 120_000) == [b"ok"]  # not 'grew' or 'moved'
    assert snapshot(client) == after
    assert log_types(client) == ["created", "upgraded"]
    assert_refused_without_effect(client, lambda: upgrade(scripts, "u2", 2, now=NOW + 120_000), "moved")


# ---------------------------------------------------------------- deliver


def test_deliver_appends_a_response_once(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts, kind="workflow")
    client.hset(keys.state(E), "status", "blocked")

    def deliver() -> Any:
        return scripts("deliver", [keys.state(E), keys.log(E), keys.done(E), keys.outbox(E)], ["d1", "{}", NOW, "wake"])

    assert deliver() == 1
    after = snapshot(client)
    assert deliver() == 0
    assert snapshot(client) == after
    assert log_types(client) == ["created", "response"]


# ------------------------------------------------- timers, sweeps, repair


def test_untimer_keeps_a_timer_armed_again(client: redis.Redis, scripts: Scripts) -> None:
    timers = "dolmen:{s0}:timers"
    client.zadd(timers, {"m": 100})
    client.zadd(timers, {"m": 200})  # a retry re-armed it after the scheduler read 100
    assert scripts("zrem_unchanged", [timers], ["m", "100"]) == 0
    assert client.zscore(timers, "m") == 200
    assert scripts("zrem_unchanged", [timers], ["m", "200"]) == 1
    assert client.zcard(timers) == 0


def test_unmark_keeps_a_tree_marked_again(client: redis.Redis, scripts: Scripts) -> None:
    dirty = indexes.key_of(client, "dirty", E)
    client.zadd(dirty, {E: 5})
    assert scripts("zrem_unchanged", [dirty], [E, "4"]) == 0
    assert scripts("zrem_unchanged", [dirty], [E, "5"]) == 1


def test_repair_only_when_nothing_changed(client: redis.Redis, scripts: Scripts) -> None:
    create(scripts)
    assert_refused_without_effect(
        client, lambda: scripts("repair", [keys.state(E)], ["pending", "0", str(NOW - 1), NOW + 1]), "changed"
    )
    assert scripts("repair", [keys.state(E)], ["pending", "0", str(NOW), NOW + 1]) == [b"ok", b"t:p/i@1.0.0.f"]
    assert client.hget(keys.state(E), "updated_at") == str(NOW + 1).encode()


# ------------------------------------------------------------------- fork


def test_fork_writes_once_even_when_re_sent(client: redis.Redis, scripts: Scripts) -> None:
    spec = {
        "state": state_fields(E, "workflow"),
        "events": [["created", json.dumps({"ffqn": "f"}), str(NOW)], ["join_set_created", "{}", str(NOW)]],
        "delivered": [f"{E}.1"],
        "children": [{"created": json.dumps({"ffqn": "c"}), "fields": state_fields(f"{E}.2")}],
        "outbox": ["start"],
    }
    fork_keys = [keys.state(E), keys.log(E), keys.done(E), keys.outbox(E), keys.state(f"{E}.2"), keys.log(f"{E}.2")]

    def fork(wid: str) -> Any:
        return scripts("fork", fork_keys, [wid, NOW, json.dumps(spec)])

    assert fork("k1") == [b"created"]
    after = snapshot(client)
    assert fork("k1") == [b"created"]
    assert snapshot(client) == after
    assert log_types(client) == ["created", "join_set_created"]
    assert_refused_without_effect(client, lambda: fork("k2"), "exists")
