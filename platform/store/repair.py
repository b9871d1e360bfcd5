"""The repair sweep: recovery that never depends on a message still existing.

Queue entries, timers and outbox messages are how work normally moves on,
but any of them can be lost (a stale runner acked an entry it no longer
owned, a timer was removed by mistake, a reply was lost mid-way). The sweep
walks the `active` index with a cursor and re-enqueues every execution that
is neither queued recently, locked, nor waiting for a time: pending and
untouched for `stale_ms` past its `not_before`, or running on a lease that
expired `stale_ms` ago. Finished or vanished executions leave the index.
A workflow still blocked `stale_ms` after the first delay it waits for was
due (`wake_at`, recorded when it unloaded) has the timers of its due, still
undelivered delays armed again: a failover can lose a timer, and firing
one twice is harmless (its delivery is deduplicated by the `done` hash).

Re-enqueueing is idempotent: a runner locks an execution before running it,
so a duplicate entry only costs a refused lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..priorities import DEFAULT, queue_name
from . import keys, outbox
from .connection import Redis, map_redis_errors
from .records import DELAY_REQUESTED, RESPONSE, continued
from .scripts import Scripts

_FIELDS = ("status", "version", "updated_at", "not_before", "lock_until", "ffqn", "outcome", "wake_at", "paused", "priority")
_DELAY_REQUESTED, _RESPONSE = DELAY_REQUESTED.encode(), RESPONSE.encode()


@dataclass(frozen=True, slots=True)
class Seen:
    """The fields of one execution's state the sweep decides on (raw strings; '' when absent)."""

    status: str
    version: str
    updated_at: int
    not_before: int
    lock_until: int
    ffqn: str
    # Finished by continuing as new: listed until its successor is (see `outbox.index_msg`).
    continued: bool = False
    # Blocked: when the first delay it waits for fires (0 = none, or not recorded).
    wake_at: int = 0
    # Paused by request (store/pauses.py): resuming queues it, the sweep does not.
    paused: bool = False
    # Its priority class (platform/priorities.py).
    priority: str = DEFAULT


def decide(seen: Seen | None, now_ms: int, stale_ms: int, paused_functions: frozenset[str] = frozenset()) -> str:
    """What to do with one indexed execution: 'drop' (from the index), 'requeue', 'rearm' or 'keep'.

    Pure. `blocked` workflows wait for responses that their children's own
    recovery (or their delays' timers) will bring, so they are kept; unless
    still blocked `stale_ms` after a delay was due: its timers are armed again ('rearm').
    Paused executions, and those of `paused_functions`, are kept: resuming
    them moves them on (a resumed function's queued entries are read again).
    """
    horizon = now_ms - stale_ms
    if seen is not None and seen.status == "finished" and seen.continued and seen.updated_at > horizon:
        return "keep"  # its successor's index message removes it, normally within milliseconds
    if seen is None or seen.status == "finished":
        return "drop"
    if seen.paused or seen.ffqn in paused_functions:
        return "keep"
    if seen.status == "pending" and seen.not_before <= horizon and seen.updated_at <= horizon:
        return "requeue"
    if seen.status == "running" and seen.lock_until <= horizon:
        return "requeue"
    if seen.status == "blocked" and 0 < seen.wake_at <= horizon:
        return "rearm"
    return "keep"


@dataclass
class RepairSweep:
    """Walks the active index in batches, one batch per `step()`, shard after shard of `shards` (all when None)."""

    client: Redis
    scripts: Scripts
    stale_ms: int = 10_000
    batch: int = 500
    cursor: int = 0
    requeued: int = 0
    dropped: int = 0
    rearmed: int = 0
    # The shards this sweep walks (a scheduler's share, see `Shards.mine`), and where in that list it is.
    shards: list[int] | None = None
    turn: int = 0

    def step(self, now_ms: int) -> int:
        """Examine the next batch (wrapping around); returns how many were re-enqueued."""
        shards = self.scripts.shards
        mine = list(range(shards.count)) if self.shards is None else self.shards
        if not mine:
            return 0
        active = shards.key(mine[self.turn % len(mine)], "active")
        with map_redis_errors():
            ids: list[bytes] = self.client.zrange(active, self.cursor, self.cursor + self.batch - 1)  # type: ignore[assignment]
            if len(ids) < self.batch:
                self.cursor = 0
                self.turn = (self.turn + 1) % len(mine)
            else:
                self.cursor += self.batch
            if not ids:
                return 0
            pipe = self.client.pipeline(transaction=False)
            pipe.hkeys(keys.PAUSED_FUNCTIONS)
            for raw in ids:
                pipe.hmget(keys.state(raw.decode()), *_FIELDS)
            paused_raw, *states = pipe.execute()
            paused = frozenset(name.decode() for name in paused_raw)
            requeued = 0
            for raw, values in zip(ids, states):
                seen = _seen(values)
                action = decide(seen, now_ms, self.stale_ms, paused)
                if action == "drop":
                    self.dropped += int(self.client.zrem(active, raw))  # type: ignore[arg-type]
                    # Removing shifts later ranks down: stay put so none is skipped.
                    self.cursor = max(0, self.cursor - 1)
                elif action == "requeue" and seen is not None:
                    requeued += self._requeue(raw.decode(), seen, now_ms)
                elif action == "rearm" and seen is not None:
                    self.rearmed += self._rearm(raw.decode(), seen, now_ms)
        self.requeued += requeued
        return requeued

    def _requeue(self, execution_id: str, seen: Seen, now_ms: int) -> int:
        reply = self.scripts(
            "repair", [keys.state(execution_id)], [seen.status, seen.version, str(seen.updated_at), now_ms]
        )
        if reply[0] != b"ok":
            return 0
        self.client.xadd(self.scripts.shards.queue(queue_name(seen.ffqn, seen.priority), execution_id), {"id": execution_id})
        return 1


    def _rearm(self, execution_id: str, seen: Seen, now_ms: int) -> int:
        """Arm again the timers of `execution_id`'s due delays whose responses were not delivered; how many."""
        entries: list[tuple[bytes, dict[bytes, bytes]]] = self.client.xrange(keys.log(execution_id))  # type: ignore[assignment]
        due = undelivered_delays(entries, now_ms)
        if not due:
            return 0
        delivered: list[bytes | None] = self.client.hmget(keys.done(execution_id), [d for d, _, _ in due])  # type: ignore[assignment]
        pipe = self.client.pipeline(transaction=False)
        armed = 0
        for (delay_id, join_set, until), done in zip(due, delivered):
            if done is None:
                member = outbox.delay_member(execution_id, seen.ffqn, delay_id, join_set, seen.priority)
                pipe.zadd(self.scripts.shards.timers(execution_id), {json.dumps(member, sort_keys=True): until})
                armed += 1
        if armed:
            pipe.execute()
        return armed


def undelivered_delays(entries: list[tuple[bytes, dict[bytes, bytes]]], now_ms: int) -> list[tuple[str, str | None, int]]:
    """(delay id, join set, until) of the delays in a log that are due by `now_ms` and have no response logged. Pure."""
    requested: dict[str, tuple[str | None, int]] = {}
    answered: set[str] = set()
    for _, fields in entries:
        kind = fields.get(b"t")
        if kind == _DELAY_REQUESTED:
            data = json.loads(fields[b"d"])
            until = int(data.get("until", int(fields.get(b"at", b"0")) + int(data.get("duration_ms", 0))))
            requested[data["delay_id"]] = (data.get("join_set"), until)
        elif kind == _RESPONSE:
            delay_id = json.loads(fields[b"d"]).get("delay_id")
            if delay_id:
                answered.add(delay_id)
    return [(d, js, until) for d, (js, until) in requested.items() if d not in answered and until <= now_ms]


def _seen(values: list[bytes | None]) -> Seen | None:
    if values[0] is None:
        return None
    text = [v.decode() if v is not None else "" for v in values]
    return Seen(
        status=text[0],
        version=text[1] or "0",
        updated_at=int(text[2] or 0),
        not_before=int(text[3] or 0),
        lock_until=int(text[4] or 0),
        ffqn=text[5],
        continued=continued(text[6]),
        wake_at=int(text[7] or 0),
        paused=text[8] == "1",
        priority=text[9] or DEFAULT,
    )
