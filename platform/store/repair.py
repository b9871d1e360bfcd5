"""The repair sweep: recovery that never depends on a message still existing.

Queue entries, timers and outbox messages are how work normally moves on,
but any of them can be lost (a stale runner acked an entry it no longer
owned, a timer was removed by mistake, a reply was lost mid-way). The sweep
walks the `active` index with a cursor and re-enqueues every execution that
is neither queued recently, locked, nor waiting for a time: pending and
untouched for `stale_ms` past its `not_before`, or running on a lease that
expired `stale_ms` ago. Finished or vanished executions leave the index.

Re-enqueueing is idempotent: a runner locks an execution before running it,
so a duplicate entry only costs a refused lock.
"""

from __future__ import annotations

from dataclasses import dataclass


from . import keys
from .connection import Redis, map_redis_errors
from .records import continued
from .scripts import Scripts

_FIELDS = ("status", "version", "updated_at", "not_before", "lock_until", "ffqn", "outcome")


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


def decide(seen: Seen | None, now_ms: int, stale_ms: int) -> str:
    """What to do with one indexed execution: 'drop' (from the index), 'requeue' or 'keep'.

    Pure. `blocked` workflows wait for responses that their children's own
    recovery (or their delays' timers) will bring, so they are kept.
    """
    horizon = now_ms - stale_ms
    if seen is not None and seen.status == "finished" and seen.continued and seen.updated_at > horizon:
        return "keep"  # its successor's index message removes it, normally within milliseconds
    if seen is None or seen.status == "finished":
        return "drop"
    if seen.status == "pending" and seen.not_before <= horizon and seen.updated_at <= horizon:
        return "requeue"
    if seen.status == "running" and seen.lock_until <= horizon:
        return "requeue"
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
            for raw in ids:
                pipe.hmget(keys.state(raw.decode()), *_FIELDS)
            states = pipe.execute()
            requeued = 0
            for raw, values in zip(ids, states):
                seen = _seen(values)
                action = decide(seen, now_ms, self.stale_ms)
                if action == "drop":
                    self.dropped += int(self.client.zrem(active, raw))  # type: ignore[arg-type]
                    # Removing shifts later ranks down: stay put so none is skipped.
                    self.cursor = max(0, self.cursor - 1)
                elif action == "requeue" and seen is not None:
                    requeued += self._requeue(raw.decode(), seen, now_ms)
        self.requeued += requeued
        return requeued

    def _requeue(self, execution_id: str, seen: Seen, now_ms: int) -> int:
        reply = self.scripts(
            "repair", [keys.state(execution_id)], [seen.status, seen.version, str(seen.updated_at), now_ms]
        )
        if reply[0] != b"ok":
            return 0
        self.client.xadd(self.scripts.shards.queue(seen.ffqn, execution_id), {"id": execution_id})
        return 1


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
    )
