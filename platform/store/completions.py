"""Stubs: executions whose result is supplied from outside, never run.

A function deployed as `kind: stub` declares its WIT signature only. Its
executions are created `blocked`, with no queue entry or timer (no runner
ever locks one, and the repair sweep keeps blocked executions as they are),
and wait until a caller supplies the result (`PUT /v1/executions/{id}/result`,
`platform executions complete`). That write is one script on the stub's
tree (lua/complete.lua): fenced by the state (a stub, not finished yet),
it appends `finished` and answers the parent with the same `response` a
finished activity gives, so a workflow's replay cannot tell the two apart.

The result is recorded once: supplying the same value again changes nothing,
another value (or any value once the stub was cancelled) is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import NotAStubError, NotFoundError, ResultRecordedError
from ..ids import ExecutionId
from . import keys, outbox, retention
from .connection import map_redis_errors
from .clock import now_ms
from .executions import response_event
from .records import ExecutionState, Outcome
from .scripts import Scripts, write_id


@dataclass(frozen=True, slots=True)
class Completed:
    """What supplying a stub's result did: `recorded` False when that same result was already there."""

    execution_id: str
    recorded: bool


def complete(scripts: Scripts, state: ExecutionState, value: Any) -> Completed:
    """Finish the stub execution `state` with result `value` (canonical JSON, already checked against its WIT type).

    Raises `NotFoundError`, `NotAStubError`, or `ResultRecordedError` when it
    finished otherwise (another value, cancelled).
    """
    eid = ExecutionId(state.id)
    parent = eid.parent
    root = eid.root
    at = now_ms()
    outcome = Outcome(value=value)
    response = response_event(state.id, outcome, join_set=state.extra.get("js") or None) if parent else {}
    parent_id = parent.value if parent else state.id
    # A child has its parent's class (inherited, platform/priorities.py).
    wake = outbox.enqueue_msg(state.extra.get("parent_ffqn", ""), parent_id, state.priority) if parent else ""
    # A root's end starts its tree's retention (store/retention.py).
    expire = "" if parent else retention.expire_message(root, at, state.extra)
    with map_redis_errors():
        pipe = scripts.pipeline()
        mark = outbox.dirty_mark(root)
        outbox.mark_dirty(pipe, mark)
        position = pipe.script(
            "complete",
            [keys.state(state.id), keys.log(state.id), keys.outbox(root),
             keys.state(parent_id), keys.log(parent_id), keys.done(parent_id)],
            [write_id(), at, json.dumps({**outcome.to_json(), "supplied": True}), json.dumps(outcome.to_json()),
             state.id if parent else "", json.dumps(response), wake, expire],
        )  # fmt: skip
        reply = pipe.execute()[position]
        result = reply[0].decode()
        messages: list[str] = []
        if result == "ok":
            messages = ([wake] if int(reply[1]) else []) + ([expire] if expire else [])
        outbox.deliver(
            scripts,
            root,
            messages,
            also=(lambda p: p.zrem(p.shards.active(state.id), state.id)) if result == "ok" else None,
            mark=mark,
        )
    if result == "ok":
        return Completed(state.id, True)
    if result == "missing":
        raise NotFoundError(f"execution {state.id} does not exist, or was removed once its retention passed")
    if result == "not_stub":
        raise not_a_stub(state.id, state.ffqn, reply[1].decode())
    recorded = Outcome.from_json(json.loads(reply[1]))
    if recorded.failure is None and recorded.continued_as is None and recorded.value == json.loads(json.dumps(value)):
        return Completed(state.id, False)
    raise ResultRecordedError(already(state.id, recorded), execution_id=state.id)


def not_a_stub(execution_id: str, ffqn: str, kind: str) -> NotAStubError:
    """The error for a result supplied to execution `execution_id` of `kind` (not `stub`)."""
    return NotAStubError(
        f"execution {execution_id} ({ffqn}) is {'an' if kind == 'activity' else 'a'} {kind}: it finishes by running, "
        "and takes no result from outside; only executions of functions deployed as `kind: stub` do",
        execution_id=execution_id,
    )


def already(execution_id: str, recorded: Outcome) -> str:
    """Why a stub that finished takes no other result."""
    if recorded.failure is not None:
        return (
            f"execution {execution_id} already finished as {recorded.failure.kind} ({recorded.failure.message}); "
            "it takes no result any more"
        )
    return (
        f"execution {execution_id} already has the result {json.dumps(recorded.value, ensure_ascii=False)[:200]}; "
        "a stub's result is recorded once (supplying that same value again changes nothing)"
    )


__all__ = ["Completed", "already", "complete", "not_a_stub"]
