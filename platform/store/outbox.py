"""Cross-slot side effects, delivered at least once.

A Lua script may only touch its own execution tree, so what must happen
elsewhere (enqueue an execution in its function's queue, arm a timer) is
written into the tree's outbox by the same script. The writer then performs
the messages and removes them. Before the script runs, the writer marks the
tree dirty; if it dies in between, the scheduler's sweep finds the mark and
delivers what is left. Duplicates are harmless: a runner locks an execution
before running it, and timers are idempotent.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from . import keys
from .scripts import Scripts


def enqueue_msg(ffqn: str, execution_id: str) -> str:
    """Message: put `execution_id` in the queue of `ffqn`."""
    return json.dumps({"op": "enqueue", "ffqn": ffqn, "id": execution_id, "n": os.urandom(4).hex()})


def timer_msg(at_ms: int, member: dict[str, Any]) -> str:
    """Message: arm a timer that fires `member` at `at_ms`."""
    return json.dumps({"op": "timer", "at": at_ms, "m": member, "n": os.urandom(4).hex()})


def timer_member(op: str, **fields: Any) -> dict[str, Any]:
    """What a timer does when it fires (see the scheduler)."""
    return {"op": op, **fields}


def queue_effects(pipe: Any, message: str) -> None:
    """Queue the Redis commands that carry out one outbox message."""
    data = json.loads(message)
    if data["op"] == "enqueue":
        pipe.xadd(keys.queue(data["ffqn"]), {"id": data["id"]})
    elif data["op"] == "timer":
        pipe.zadd(keys.TIMERS, {json.dumps(data["m"], sort_keys=True): data["at"]})
    else:  # pragma: no cover - written only by this module
        raise ValueError(f"unknown outbox message {message!r}")


def mark_dirty(pipe: Any, root: str) -> None:
    """Pre-write: the tree may have outbox messages (time as the score)."""
    pipe.zadd(keys.DIRTY, {root: time.time_ns() // 1000})


def deliver_after(pipe: Any, root: str, messages: list[str]) -> None:
    """Queue the delivery of messages the script earlier in `pipe` writes to the outbox.

    If the script refuses the write (it is fenced), the effects still run: an
    enqueued id that does not exist, or a timer for a request that will be
    made again identically by the runner that took over, is harmless.
    """
    for message in messages:
        queue_effects(pipe, message)
    for message in messages:
        pipe.lrem(keys.outbox(root), 1, message)


def deliver(client: redis.Redis, root: str, messages: list[str]) -> None:
    """Carry out messages just written to a tree's outbox, then remove them."""
    if not messages:
        return
    pipe = client.pipeline(transaction=False)
    for message in messages:
        queue_effects(pipe, message)
    for message in messages:
        pipe.lrem(keys.outbox(root), 1, message)
    pipe.execute()


def sweep(client: redis.Redis, scripts: Scripts, older_than_ms: int = 2000, limit: int = 500) -> int:
    """Deliver outbox messages left behind by writers that died. Returns how many."""
    horizon = (time.time_ns() // 1000) - older_than_ms * 1000
    entries: list[tuple[bytes, float]] = client.zrangebyscore(  # type: ignore[assignment]
        keys.DIRTY, "-inf", horizon, start=0, num=limit, withscores=True
    )
    delivered = 0
    for raw_root, score in entries:
        root = raw_root.decode()
        messages = [m.decode() for m in client.lrange(keys.outbox(root), 0, -1)]  # type: ignore[union-attr]
        deliver(client, root, messages)
        delivered += len(messages)
        scripts("unmark", [keys.DIRTY], [root, repr(int(score))])
    return delivered
