"""Platform-wide counts read from the store (every shard) at once: executions by status, queue depths.

The gateway's `GET /metrics` turns them into Prometheus gauges (gateway/metrics.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..priorities import CLASSES, queue_name
from . import keys
from .connection import Redis, map_redis_errors
from .records import STATUSES
from .shards import Shards

# Active executions whose status is sampled at each read (one HGET each).
MAX_ACTIVE_SAMPLED = 10_000


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What `read_counts` found."""

    # Executions per status (every one of `records.STATUSES`); unfinished ones sampled, see `MAX_ACTIVE_SAMPLED`.
    by_status: Mapping[str, int]
    # Executions not finished yet (the active index).
    unfinished: int
    # Queue entries per function (waiting for a runner or being run), over its queues of every priority class.
    queue_depths: Mapping[str, int]


def read_counts(client: Redis, shards: Shards, ffqns: Iterable[str]) -> StoreCounts:
    """Executions by status and the queue depth of each of `ffqns`, over every shard."""
    names = sorted(set(ffqns))
    count = shards.count
    with map_redis_errors():
        pipe = client.pipeline(transaction=False)
        for shard in range(count):
            pipe.zcard(shards.key(shard, "executions"))
            pipe.zcard(shards.key(shard, "active"))
            pipe.zrange(shards.key(shard, "active"), 0, MAX_ACTIVE_SAMPLED // count - 1)
        # A function's depth counts its queues of every priority class (platform/priorities.py).
        for ffqn in names:
            for priority in CLASSES:
                for stream in shards.queues(queue_name(ffqn, priority)):
                    pipe.xlen(stream)
        replies = pipe.execute()
        total = sum(int(n) for n in replies[0 : 3 * count : 3])
        active = sum(int(n) for n in replies[1 : 3 * count : 3])
        active_ids = [raw for part in replies[2 : 3 * count : 3] for raw in part]
        lengths = [int(d) for d in replies[3 * count :]]
        per_function = count * len(CLASSES)
        depths = [sum(lengths[i * per_function : (i + 1) * per_function]) for i in range(len(names))]
        by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
        if active_ids:
            pipe = client.pipeline(transaction=False)
            for raw_id in active_ids:
                pipe.hget(keys.state(raw_id.decode()), "status")
            for status in pipe.execute():
                name = status.decode() if status else ""
                if name in by_status:
                    by_status[name] += 1
    # Finished executions leave the active index; a just-finished one may still be in it.
    by_status["finished"] += max(0, total - active)
    return StoreCounts(by_status, active, dict(zip(names, depths)))
