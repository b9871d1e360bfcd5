"""Timers in Redis: reading the due ones and carrying them out (the scheduler drives this, store/shards.py splits them).

Timers (retries, durable sleeps, scheduled executions) live in sorted sets,
one per shard, scored by when they are due. A due timer is carried out
first and removed after, only if it was not armed again meanwhile, so a
scheduler that dies in between leaves it to fire again; firing twice is
harmless (enqueueing is deduplicated by the lock, delivering a delay by the
`done` hash).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog

from ..priorities import DEFAULT, queue_name
from . import keys, outbox
from .clock import now_ms
from .connection import map_redis_errors, translated
from .memory import refused_for_memory
from .scripts import Pipeline, Scripts

log = structlog.get_logger("dolmen.scheduler")


@dataclass(frozen=True, slots=True)
class TimerRound:
    """What one round of due timers did."""

    # How many timers were due (at most the round's limit per shard).
    due: int
    # How many of them were carried out and removed.
    fired: int
    # The first refusal of a timer's write, translated (a `StoreError`); None when every one fired.
    refused: BaseException | None = None
    # Whether that refusal was Redis being full (maxmemory): the timer stays armed and fires once there is room.
    full: bool = False


def fire_due(scripts: Scripts, shards: list[int] | None, limit: int = 500) -> TimerRound:
    """Carry out the timers of `shards` (all when None) that are due, then remove those carried out.

    A timer is removed after it fired (in the next round trip), and only if
    nobody armed it again meanwhile (a retry re-arms the same member for a
    later time). One that Redis refused stays armed: the round reports the
    refusal instead of raising it, so that the caller decides when to try
    again. Other store errors raise `StoreError`.
    """
    table = scripts.shards
    timers = [table.key(shard, "timers") for shard in (range(table.count) if shards is None else shards)]
    if not timers:
        return TimerRound(0, 0)
    with map_redis_errors():
        read = scripts.client.pipeline(transaction=False)
        for key in timers:
            read.zrangebyscore(key, "-inf", now_ms(), start=0, num=limit, withscores=True)
        due = [(key, raw, score) for key, part in zip(timers, read.execute()) for raw, score in part]
        if not due:
            return TimerRound(0, 0)
        pipe = scripts.pipeline()
        woken: list[str] = []
        marks: list[str] = []
        spans: list[tuple[int, int]] = []
        for _, raw, _ in due:
            start = len(pipe)
            delivery = _fire(pipe, json.loads(raw))
            spans.append((start, len(pipe)))
            if delivery is not None:
                woken.append(delivery[0])
                marks.append(delivery[1])
        replies = pipe.execute(raise_errors=False)
        fired = [t for t, (a, b) in zip(due, spans) if not any(isinstance(r, Exception) for r in replies[a:b])]
        if fired:
            remove = scripts.pipeline()
            for key, raw, score in fired:
                remove.script("zrem_unchanged", [key], [raw, repr(int(score))])
            remove.execute()
        # Whatever a delivery answered (a re-sent one answers 0), the wake-up
        # is in its tree's outbox if it is owed: deliver those outboxes now.
        outbox.flush(scripts, list(dict.fromkeys(woken)), marks=marks)
    refused = next((r for r in replies if isinstance(r, Exception)), None)
    if refused is None:
        return TimerRound(len(due), len(fired))
    return TimerRound(len(due), len(fired), translated(refused), refused_for_memory(refused))


def _fire(pipe: Pipeline, member: dict[str, Any]) -> tuple[str, str] | None:
    """Queue what a timer does; returns the tree whose outbox to deliver after, and its dirty mark."""
    op = member["op"]
    if op == "enqueue":
        priority = member.get("p", DEFAULT)
        pipe.xadd(pipe.shards.queue(queue_name(member["ffqn"], priority), member["id"]), {"id": member["id"]})
        if priority != DEFAULT:
            pipe.sadd(keys.PRIORITIES, priority)  # readers read this class's queues from now on
        return None
    if op == "deliver":
        execution_id = member["id"]
        root = keys.root_of(execution_id)
        mark = outbox.dirty_mark(root)
        outbox.mark_dirty(pipe, mark)
        pipe.script(
            "deliver",
            [keys.state(execution_id), keys.log(execution_id), keys.done(execution_id), keys.outbox(root)],
            [member["delay_id"], json.dumps(member["response"]), now_ms(),
             outbox.enqueue_msg(member["ffqn"], execution_id, member.get("p", DEFAULT))],
        )  # fmt: skip
        return root, mark
    log.error("unknown timer", member=member)
    return None


__all__ = ["TimerRound", "fire_due"]
