"""pause.lua and resume.lua, and what a pause changes in lock, deliver and block: each once, refusals without effect."""

from __future__ import annotations

from typing import Any

import redis

from dolmen.platform.store import keys
from dolmen.platform.store.scripts import Scripts
from tests.store.test_scripts import E, NOW, assert_refused_without_effect, create, lock, log_types, scripts, snapshot

__all__ = ["scripts"]  # the fixture, used by name


def pause(scripts: Scripts, wid: str, eid: str = E) -> Any:
    return scripts("pause", [keys.state(eid), keys.log(eid)], [wid, NOW])


def resume(scripts: Scripts, wid: str, now: int = NOW, eid: str = E) -> Any:
    return scripts("resume", [keys.state(eid), keys.log(eid), keys.outbox(keys.root_of(eid))], [wid, now, "go"])


def test_pause_once_even_when_re_sent_and_refusals_without_effect(client: redis.Redis, scripts: Scripts) -> None:
    """A pause logs `paused` once; a repeat of the same write is answered alike; missing, stub and finished are refused."""
    assert_refused_without_effect(client, lambda: pause(scripts, "p0"), "missing")
    create(scripts)
    assert pause(scripts, "p1") == [b"paused", b"pending"]
    after = snapshot(client)
    assert pause(scripts, "p1") == [b"paused", b"pending"]  # re-sent after a lost reply
    assert_refused_without_effect(client, lambda: pause(scripts, "p2"), "already")
    assert snapshot(client) == after
    assert log_types(client) == ["created", "paused"]
    create(scripts, f"{E}.1", kind="stub", status="blocked")
    assert_refused_without_effect(client, lambda: pause(scripts, "p3", f"{E}.1"), "stub")
    client.hset(keys.state(E), "status", "finished")
    assert_refused_without_effect(client, lambda: resume(scripts, "r1"), "finished")


def test_a_paused_execution_is_not_locked_unless_its_cancellation_was_asked(client: redis.Redis, scripts: Scripts) -> None:
    """lock.lua refuses a paused execution without effect; a cancellation request lets its runner lock it to cancel."""
    create(scripts)
    pause(scripts, "p1")
    assert_refused_without_effect(client, lambda: lock(scripts), "paused")
    client.hset(keys.state(E), "cancel", "1")
    assert lock(scripts)[0] == b"ok"


def test_resume_queues_what_has_work_and_only_that(client: redis.Redis, scripts: Scripts) -> None:
    """Pending and due: queued. Retry not due yet: left to its timer. Blocked: left waiting. Not paused: refused."""
    create(scripts)
    assert_refused_without_effect(client, lambda: resume(scripts, "r0"), "already")
    pause(scripts, "p1")
    outbox = client.lrange(keys.outbox(E), 0, -1)
    assert resume(scripts, "r1") == [b"resumed", 1]
    assert resume(scripts, "r1") == [b"resumed", 1]  # re-sent: answered alike, queued once
    assert client.lrange(keys.outbox(E), 0, -1) == [*outbox, b"go"]
    assert log_types(client) == ["created", "paused", "resumed"]
    assert client.hget(keys.state(E), "paused") is None
    client.hset(keys.state(E), "not_before", str(NOW + 5000))
    pause(scripts, "p2")
    assert resume(scripts, "r2") == [b"resumed", 0]
    client.hset(keys.state(E), mapping={"status": "blocked", "not_before": "0"})
    pause(scripts, "p3")
    assert resume(scripts, "r3") == [b"resumed", 0]


def test_a_paused_workflow_gets_its_responses_but_is_not_woken(client: redis.Redis, scripts: Scripts) -> None:
    """deliver appends the response and makes it pending (it has work), with no wake-up message; resume queues it."""
    create(scripts, kind="workflow", status="blocked")
    pause(scripts, "p1")
    outbox = client.lrange(keys.outbox(E), 0, -1)
    assert scripts("deliver", [keys.state(E), keys.log(E), keys.done(E), keys.outbox(E)], ["d1", "{}", NOW, "wake"]) == 0
    assert log_types(client) == ["created", "paused", "response"]
    assert client.hget(keys.state(E), "status") == b"pending"
    assert client.lrange(keys.outbox(E), 0, -1) == outbox
    assert resume(scripts, "r1") == [b"resumed", 1]


def test_a_workflow_unloading_because_paused_is_released_pending_and_not_queued(
    client: redis.Redis, scripts: Scripts
) -> None:
    """block.lua with `paused`: pending even when its log did not grow, and no requeue message while it is paused."""
    create(scripts, kind="workflow")
    lock(scripts, ttl=60_000)
    pause(scripts, "p1")
    outbox = client.lrange(keys.outbox(E), 0, -1)
    length = client.xlen(keys.log(E))
    args = ["b1", "r1", "1", NOW, length, "requeue", "", "", "1"]
    assert scripts("block", [keys.state(E), keys.log(E), keys.outbox(E)], args) == [b"paused"]
    assert client.hget(keys.state(E), "status") == b"pending"
    assert client.lrange(keys.outbox(E), 0, -1) == outbox
