"""Write a forked execution: its state, its copied log and the children it starts, in one transaction.

Every key written lives in the fork's own tree (hash tag of its new root id),
so one MULTI/EXEC makes it all-or-nothing; what must happen elsewhere
(enqueueing, timers) goes through the tree's outbox as everywhere else.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from ..errors import ConflictError
from ..ids import ExecutionId
from . import keys, outbox
from .connection import map_redis_errors
from .executions import NewExecution, now_ms


def write_fork(
    client: redis.Redis,
    root: NewExecution,
    events: list[tuple[str, dict[str, Any], int]],
    *,
    children: list[NewExecution] = (),  # type: ignore[assignment]
    delivered: list[str] = (),  # type: ignore[assignment]
    messages: list[str] = (),  # type: ignore[assignment]
) -> None:
    """Create `root` with `events` as its log (the first must be `created`), its `children`, and run it."""
    tree = ExecutionId(root.id).root
    if tree != root.id:
        raise ConflictError(f"a fork must be a root execution, not {root.id}")
    at = now_ms()
    start = [root.initial_message(), *(c.initial_message() for c in children), *messages]
    with map_redis_errors():
        if client.exists(keys.state(root.id)):
            raise ConflictError(f"execution {root.id} already exists; fork again for a new id")
        pre = client.pipeline(transaction=False)
        outbox.mark_dirty(pre, tree)
        for new in (root, *children):
            pre.zadd(keys.EXECUTIONS, {new.id: at}, nx=True)
            pre.zadd(keys.ACTIVE, {new.id: at}, nx=True)
        pre.execute()
        tx = client.pipeline(transaction=True)
        tx.hset(keys.state(root.id), items=root.state_fields(at))
        for event_type, data, when in events:
            tx.xadd(keys.log(root.id), {"t": event_type, "d": json.dumps(data), "at": str(when)})
        if delivered:
            tx.hset(keys.done(root.id), items=[x for rid in delivered for x in (rid, str(at))])
        for child in children:
            tx.hset(keys.state(child.id), items=child.state_fields(at))
            tx.xadd(keys.log(child.id), {"t": "created", "d": json.dumps(child.created_event()), "at": str(at)})
        for message in start:
            tx.rpush(keys.outbox(tree), message)
        tx.execute()
        outbox.deliver(client, tree, start)
