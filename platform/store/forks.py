"""Write a forked execution: its state, its copied log and the children it starts, in one script.

Every key written lives in the fork's own tree (hash tag of its new root id),
so one script (lua/fork.lua) makes it all-or-nothing, and a re-send after a
lost reply is recognised by its write id; what must happen elsewhere
(enqueueing, timers) goes through the tree's outbox as everywhere else.
"""

from __future__ import annotations

import json
from typing import Any


from ..errors import ConflictError
from ..ids import ExecutionId
from . import keys, outbox
from .connection import Redis, map_redis_errors
from .creates import NewExecution
from .clock import now_ms
from .scripts import Scripts, write_id


def write_fork(
    client: Redis,
    root: NewExecution,
    events: list[tuple[str, dict[str, Any], int]],
    *,
    children: list[NewExecution] = (),  # type: ignore[assignment]
    delivered: list[str] = (),  # type: ignore[assignment]
    messages: list[str] = (),  # type: ignore[assignment]
) -> None:
    """Create `root` with `events` as its log (the first must be `created`), its `children`, and run it.

    `events` are `(type, data, ms)`; `delivered` the response ids its `done`
    hash starts with; `messages` more outbox messages to carry out. Raises
    `ConflictError` when `root` is not a root id or already exists.
    """
    tree = ExecutionId(root.id).root
    if tree != root.id:
        raise ConflictError(f"a fork must be a root execution, not {root.id}")
    at = now_ms()
    start = [*root.initial_messages(), *(m for c in children for m in c.initial_messages()), *messages]
    start += [outbox.index_msg(new.id, at, tags=new.tags) for new in (root, *children)]
    spec = {
        "state": root.state_fields(at),
        "events": [[event_type, json.dumps(data), str(when)] for event_type, data, when in events],
        "delivered": list(delivered),
        "children": [{"created": json.dumps(c.created_event()), "fields": c.state_fields(at)} for c in children],
        "outbox": start,
    }
    script_keys = [keys.state(root.id), keys.log(root.id), keys.done(root.id), keys.outbox(tree)]
    for child in children:
        script_keys += [keys.state(child.id), keys.log(child.id)]
    scripts = Scripts(client)
    with map_redis_errors():
        pipe = scripts.pipeline()
        mark = outbox.dirty_mark(tree)
        outbox.mark_dirty(pipe, mark)
        position = pipe.script("fork", script_keys, [write_id(), at, json.dumps(spec)])
        reply = pipe.execute()[position]
        if reply[0] != b"created":
            raise ConflictError(f"execution {root.id} already exists; fork again for a new id")
        outbox.deliver(scripts, tree, start, mark=mark)
