"""Moving entries from the keys of an earlier layout to today's sharded keys (store/shards.py).

Earlier versions kept each function's queue in `dolmen:q:FFQN` (later
`dolmen:{queues}:FFQN`), and the timers and the dirty, executions, active
and expiry indexes in one sorted set each (`dolmen:timers`, ...). A store
written by such a version may still hold entries there, which no process
reads any more; the scheduler moves them when it starts.

Each entry is added to its shard's key before the old key is deleted, so a
crash in between leaves a duplicate, never a loss: a duplicate queue entry
only costs a refused lock (a runner locks an execution before running it),
and a sorted set's member added twice is the same member. An entry a runner
of the old version had read but not acked is queued again the same way: its
lock decides. Whatever is missed (say, an old runner still writing during a
rolling upgrade) is re-queued by the repair sweep once it is stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import keys
from .connection import Redis, map_redis_errors
from .shards import Shards

# Where queues were before they were sharded, oldest first.
LEGACY_QUEUE_PREFIXES = (f"{keys.PREFIX}:q:", f"{keys.PREFIX}:{{queues}}:")


def _timer_id(member: str) -> str:
    return str(json.loads(member)["id"])


def _mark_root(member: str) -> str:
    return member.partition("|")[0]


# kind -> (the old key, what in a member picks its shard)
LEGACY_INDEXES: dict[str, tuple[str, Callable[[str], str]]] = {
    "timers": (f"{keys.PREFIX}:timers", _timer_id),
    "dirty": (f"{keys.PREFIX}:dirty", _mark_root),
    "executions": (f"{keys.PREFIX}:executions", str),
    "active": (f"{keys.PREFIX}:active", str),
    "expiry": (f"{keys.PREFIX}:expiry", str),
}


def move_legacy_keys(client: Redis, shards: Shards, batch: int = 1000) -> int:
    """Move every entry of the old queue and index keys into today's shards; how many were moved."""
    return move_legacy_queues(client, shards, batch) + move_legacy_indexes(client, shards, batch)


def move_legacy_queues(client: Redis, shards: Shards, batch: int = 1000) -> int:
    """Move the entries of the old queue streams, in order, into their executions' shards."""
    moved = 0
    with map_redis_errors():
        for prefix in LEGACY_QUEUE_PREFIXES:
            found = client.scan_iter(match=f"{prefix}*", count=1000, _type="stream")
            for old in [key.decode() if isinstance(key, bytes) else str(key) for key in found]:
                moved += _move_stream(client, shards, old, old.removeprefix(prefix), batch)
    return moved


def _move_stream(client: Redis, shards: Shards, old: str, ffqn: str, batch: int) -> int:
    moved = 0
    after = "-"
    while True:
        entries: Any = client.xrange(old, min=after, max="+", count=batch)
        if not entries:
            break
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            if b"id" in fields:
                pipe.xadd(shards.queue(ffqn, fields[b"id"].decode()), {"id": fields[b"id"]})
        pipe.execute()
        moved += len(entries)
        after = "(" + entries[-1][0].decode()  # exclusive: the entries after the last one moved
    client.delete(old)
    return moved


def move_legacy_indexes(client: Redis, shards: Shards, batch: int = 1000) -> int:
    """Move the members of the old one-key timers and indexes into their shards, with their scores."""
    moved = 0
    with map_redis_errors():
        for kind, (old, shard_by) in LEGACY_INDEXES.items():
            if client.type(old) != b"zset":
                continue  # absent, or a user's own key that happens to have the name
            cursor = 0
            while True:
                cursor, members = client.zscan(old, cursor, count=batch)  # type: ignore[misc]
                pipe = client.pipeline(transaction=False)
                for raw, score in members:
                    member = raw.decode() if isinstance(raw, bytes) else str(raw)
                    pipe.zadd(shards.key(shards.of(shard_by(member)), kind), {member: score})
                pipe.execute()
                moved += len(members)
                if cursor == 0:
                    break
            client.delete(old)
    return moved


__all__ = ["LEGACY_INDEXES", "LEGACY_QUEUE_PREFIXES", "move_legacy_indexes", "move_legacy_keys", "move_legacy_queues"]
