"""The fenced write script calls of a runner that are more than a line: a workflow's commit, an execution's finish.

`Leases` sends them: `finish` one, `finish_many` those of a batch of short
activities in one round trip (see `runner.batching`). Pure: building a call
and deciding its effects does no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ids import ExecutionId
from . import keys, outbox, retention
from .compact_json import dumps
from .creates import NewExecution
from .clock import now_ms
from .executions import response_event
from .lease_values import Lease, QueueEntry, ScriptCall, ack_entries
from .records import Failure, Outcome
from .scripts import write_id
from .starts import create_elsewhere, start_messages


# What an execution finishes as when its cancellation was requested while it ran (`unless_cancelled`).
_CANCELLED = Outcome(failure=Failure("cancelled", "cancelled while it ran; its result was discarded"))
_CANCELLED_JSON = json.dumps(_CANCELLED.to_json())


@dataclass(frozen=True, slots=True)
class FinishWrite:
    """A prepared `finish` script call with what its acceptance sets off.

    `wake` is the parent's enqueue message (empty for a root), `expire` the
    root's retention message, `successor` the outbox message that creates a
    continue-as-new successor (empty when none).
    """

    lease: Lease
    call: ScriptCall
    mark: str
    wake: str
    expire: str
    successor: str
    entries: tuple[QueueEntry, ...]
    clear_timer: dict[str, Any] | None

    @property
    def root(self) -> str:
        """The id of the finished execution's tree root."""
        return self.lease.root

    @property
    def messages(self) -> list[str]:
        """Every outbox message the script may write (whether it does depends on its reply)."""
        return [m for m in (self.wake, self.expire, self.successor) if m]


def finish_write(
    lease: Lease,
    outcome: Outcome,
    *,
    entries: tuple[QueueEntry, ...] | list[QueueEntry] = (),
    extra: dict[str, Any] | None = None,
    unless_cancelled: bool = False,
    clear_timer: dict[str, Any] | None = None,
    parent_tail_after: str | None = None,
    continue_with: NewExecution | None = None,
    log_seen: tuple[str, int] | None = None,
) -> FinishWrite:
    """The `finish` call of `lease` with `outcome` (see `Leases.finish` for the options)."""
    state = lease.state
    eid = ExecutionId(state.id)
    parent = eid.parent
    parent_id = parent.value if parent else state.id
    js = state.extra.get("js") or None
    finished = {**outcome.to_json(), **(extra or {})}
    response = response_event(state.id, outcome, join_set=js) if parent else {}
    # A child has its parent's class (inherited, platform/priorities.py).
    wake = outbox.enqueue_msg(state.extra.get("parent_ffqn", ""), parent_id, state.priority) if parent else ""
    alternative: list[str] = ["", "", ""]
    if unless_cancelled:
        alternative = [
            dumps({**_CANCELLED.to_json(), **extra}) if extra else _CANCELLED_JSON,
            _CANCELLED_JSON,
            dumps(response_event(state.id, _CANCELLED, join_set=js) if parent else {}),
        ]
    root = eid.root
    at = now_ms()
    # A root's end starts its tree's retention (store/retention.py).
    expire = "" if parent else retention.expire_message(root, at, state.extra)
    successor = "" if continue_with is None else create_elsewhere(continue_with, at, wid=f"{state.id}/continue")
    call = ScriptCall(
        "finish",
        [keys.state(state.id), keys.log(state.id), keys.outbox(root),
         keys.state(parent_id), keys.log(parent_id), keys.done(parent_id)],
        [write_id(), lease.owner, lease.version, at, dumps(finished), dumps(outcome.to_json()),
         state.id if parent else "", dumps(response), wake, *alternative, parent_tail_after or "", expire,
         successor, *(log_seen or ("", ""))],
        [],
    )  # fmt: skip
    return FinishWrite(lease, call, outbox.dirty_mark(root), wake, expire, successor, tuple(entries), clear_timer)


def finish_effects(write: FinishWrite, reply: Any, *, with_parent_commit: bool) -> tuple[list[str], Callable[[Any], None] | None]:
    """What an accepted `finish` sets off: outbox messages, and the queue and index clean-up for one pipeline (None: none).

    `with_parent_commit`: the finish went with its parent's held commit, which
    lists the child as finished itself.
    """
    # A continued execution stays listed as active until its successor is (see `starts.start_messages`).
    continued = [write.successor] if write.successor and not int(reply[2]) else []
    execution_id = write.lease.id

    def also(pipe: Any) -> None:
        ack_entries(pipe, write.entries)
        if not with_parent_commit and not continued:
            pipe.zrem(pipe.shards.active(execution_id), execution_id)
        if write.clear_timer is not None:
            pipe.zrem(pipe.shards.timers(str(write.clear_timer["id"])), json.dumps(write.clear_timer, sort_keys=True))

    messages = ([write.wake] if int(reply[1]) else []) + ([write.expire] if write.expire else []) + continued
    # A child run inline with its parent's commit has nothing to clean up: no queue entry, timer or listing.
    idle = not write.entries and (with_parent_commit or continued) and write.clear_timer is None
    return messages, None if idle else also


def commit_call(
    lease: Lease,
    events: list[tuple[str, dict[str, Any], int]],
    creates: list[NewExecution],
    *,
    last_seen: str,
    messages: list[str] = (),  # type: ignore[assignment]
    state_fields: dict[str, str] | None = None,
    finished_inline: str | None = None,
    at: int | None = None,
    seen_length: int | None = None,
) -> ScriptCall:
    """A workflow's `commit` script call: its requests `(type, data, at)` and the executions they create.

    `finished_inline` is a child finished in the same round trip.

    `seen_length`: how many log entries the runner read, up to `last_seen`; the
    script refuses (`behind`) when the log no longer holds them (lua/_prelude.lua `holds`).

    `at` (ms, default now) is the creation time of the children it creates.
    """
    at = now_ms() if at is None else at
    children = [new for new in creates if ExecutionId(new.id).root == lease.root]
    elsewhere = [new for new in creates if ExecutionId(new.id).root != lease.root]
    create_specs = [
        {"created": dumps(new.created_event()), "fields": new.state_fields(at)} for new in children
    ]
    starts = [
        m
        for new in children
        for m in ([outbox.index_msg(new.id, at, finished=True, tags=new.tags)] if new.id == finished_inline else start_messages(new, at))
    ]
    starts += [create_elsewhere(new, at, wid=f"{lease.id}/{new.id}") for new in elsewhere]
    starts += list(messages)
    spec = {
        "events": [[t, dumps(d), str(when)] for t, d, when in events],
        "creates": create_specs,
        "outbox": starts,
        "state": [x for kv in (state_fields or {}).items() for x in kv],
    }
    script_keys = [keys.state(lease.id), keys.log(lease.id), keys.outbox(lease.root)]
    for new in children:
        script_keys += [keys.state(new.id), keys.log(new.id)]
    return ScriptCall("commit", script_keys, [write_id(), lease.owner, lease.version, at, dumps(spec), last_seen, "" if seen_length is None else seen_length],
        starts,
    )
