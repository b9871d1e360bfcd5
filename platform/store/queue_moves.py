"""Moving queue entries from the keys of an earlier layout to today's (`keys.queue`).

Before queues shared a hash tag they were `dolmen:q:FFQN`. A store written
by that version may still hold entries there, which no runner reads any
more; the scheduler moves them when it starts. Each entry is added to the
new queue before the old stream is deleted, so a crash in between leaves a
duplicate, never a loss, and a duplicate only costs a refused lock (a runner
locks an execution before running it). An entry a runner of the old version
had read but not acked is queued again the same way: its lock decides.
Whatever is missed (say, an old runner still writing during a rolling
upgrade) is re-queued by the repair sweep once it is stale.
"""

from __future__ import annotations

from typing import Any

from . import keys
from .connection import Redis, map_redis_errors


def move_legacy_queues(client: Redis, batch: int = 1000) -> int:
    """Move every entry of the old queue keys into today's queues; how many were moved."""
    moved = 0
    with map_redis_errors():
        found = client.scan_iter(match=f"{keys.LEGACY_QUEUE_PREFIX}*", count=1000, _type="stream")
        legacy = [key.decode() if isinstance(key, bytes) else str(key) for key in found]
        for old in legacy:
            ffqn = old.removeprefix(keys.LEGACY_QUEUE_PREFIX)
            after = "-"
            while True:
                entries: Any = client.xrange(old, min=after, max="+", count=batch)
                if not entries:
                    break
                pipe = client.pipeline(transaction=False)
                for _, fields in entries:
                    if b"id" in fields:
                        pipe.xadd(keys.queue(ffqn), {"id": fields[b"id"]})
                pipe.execute()
                moved += len(entries)
                after = "(" + entries[-1][0].decode()  # exclusive: the entries after the last one moved
            client.delete(old)
    return moved


__all__ = ["move_legacy_queues"]
