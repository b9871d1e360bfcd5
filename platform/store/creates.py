"""What creating an execution writes: the new execution's fields, the `create` script call, and its result.

Shared by the sync `ExecutionStore.create` (executions.py), the event loop's
`AsyncCreates` and the runner's writes that create children.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConflictError
from ..ids import ExecutionId, new_seed
from ..priorities import DEFAULT
from . import keys, outbox
from .clock import now_ms
from .records import Kind
from .scripts import write_id


# How long an idempotency key stays bound to its execution.
IDEMPOTENCY_TTL_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class NewExecution:
    """Everything needed to create an execution.

    `params` is the canonical JSON of the arguments (one item per WIT
    parameter); `not_before` (ms since the epoch, 0: now) delays its first
    run; `created_extra` adds fields to its `created` event.
    """

    id: str
    ffqn: str
    kind: Kind
    digest: str
    params: list[Any]
    revision: int | None = None
    component: str | None = None
    parent: str | None = None
    not_before: int = 0
    created_extra: dict[str, Any] = field(default_factory=dict)
    # Extra state fields: `js` (the parent's join set), `parent_ffqn` (to wake the parent).
    state_extra: dict[str, str] = field(default_factory=dict)
    # Created already locked by this owner (a runner that runs it at once). Instead of
    # being enqueued, it gets a recovery timer that enqueues it if that runner dies.
    locked_by: str | None = None
    lock_ttl_ms: int = 0
    # A workflow's randomness seed, recorded in its `created` event (see `ids.new_seed`).
    # Left out, a workflow gets a fresh one here, once per object, so every
    # `created_event()` of it agrees; a fork passes its source's.
    seed: str | None = None
    # `KEY -> VALUE`, checked (see `tags.check_tags`): recorded in `created` and the state, and indexed.
    tags: dict[str, str] = field(default_factory=dict)
    # Its priority class (platform/priorities.py): recorded in `created` and the state when not normal.
    priority: str = DEFAULT

    def __post_init__(self) -> None:
        if self.seed is None and self.kind == "workflow":
            object.__setattr__(self, "seed", new_seed())

    def created_event(self) -> dict[str, Any]:
        """The data of its `created` event (the log's first entry)."""
        data: dict[str, Any] = {
            "ffqn": self.ffqn,
            "params": self.params,
            "kind": self.kind,
            "component_digest": self.digest,
        }
        if self.parent:
            data["parent_id"] = self.parent
        if self.not_before:
            data["scheduled_at"] = self.not_before
        if self.seed is not None:
            data["seed"] = self.seed
        if self.tags:
            data["tags"] = self.tags
        if self.priority != DEFAULT:
            data["priority"] = self.priority
        data.update(self.created_extra)
        return data

    def state_fields(self, at: int) -> list[str]:
        """Its state hash as created at `at` (ms): a flat `[field, value, ...]` list, as HSET takes it."""
        fields = {
            "id": self.id,
            "ffqn": self.ffqn,
            "kind": self.kind,
            "digest": self.digest,
            "status": "pending",
            "version": "0",
            "attempt": "0",
            "created_at": str(at),
            "updated_at": str(at),
            "params": json.dumps(self.params),
            "parent": self.parent or "",
            "rev": "" if self.revision is None else str(self.revision),
            "component": self.component or "",
            "not_before": str(self.not_before),
            **self.state_extra,
        }
        if self.tags:
            fields["tags"] = json.dumps(self.tags, sort_keys=True, ensure_ascii=False)
        if self.priority != DEFAULT:
            fields["priority"] = self.priority
        if self.kind == "stub":
            # Never queued nor locked: blocked until its result is supplied (completions.py).
            fields["status"] = "blocked"
        elif self.locked_by is not None:
            fields.update(
                status="running", owner=self.locked_by, lock_until=str(at + self.lock_ttl_ms), version="1", attempt="1"
            )
        return [item for pair in fields.items() for item in pair]

    def recovery_timer(self) -> dict[str, Any]:
        """For a pre-locked execution: the timer member that enqueues it if its runner dies."""
        return outbox.enqueue_member(self.ffqn, self.id, self.priority)

    def initial_messages(self) -> list[str]:
        """The outbox messages that make it runnable: `initial_message()`, none for a stub (never run)."""
        return [] if self.kind == "stub" else [self.initial_message()]

    def initial_message(self) -> str:
        """The outbox message that makes it runnable: enqueue now, or a timer."""
        if self.locked_by is not None:
            return outbox.timer_msg(now_ms() + self.lock_ttl_ms + 1000, self.recovery_timer())
        if self.not_before and self.not_before > now_ms():
            return outbox.timer_msg(self.not_before, outbox.enqueue_member(self.ffqn, self.id, self.priority))
        return outbox.enqueue_msg(self.ffqn, self.id, self.priority)


@dataclass(frozen=True, slots=True)
class Created:
    """The result of `create`: the id, and False when it already existed."""

    id: str
    created: bool


@dataclass(frozen=True, slots=True)
class CreateCall:
    """One `create` script call: its keys and arguments, and the outbox messages it writes.

    Shared by `ExecutionStore.create` and the event loop's `AsyncCreates`, so
    both send the same ARGV layout (lua/create.lua).
    """

    new: NewExecution
    root: str
    keys: list[str]
    args: list[Any]
    messages: list[str]

    @classmethod
    def of(cls, new: NewExecution) -> CreateCall:
        """The call that creates `new`, with a fresh write id."""
        at = now_ms()
        root = ExecutionId(new.id).root
        messages = [*new.initial_messages(), outbox.index_msg(new.id, at, tags=new.tags)]
        return cls(
            new,
            root,
            [keys.state(new.id), keys.log(new.id), keys.outbox(root)],
            [write_id(), json.dumps(new.created_event()), at, len(messages), *messages, *new.state_fields(at)],
            messages,
        )  # fmt: skip

    def result(self, reply: list[Any]) -> Created:
        """What the script's reply means; raises `ConflictError` when the id exists with other inputs."""
        if reply[0] == b"exists":
            existing_ffqn, existing_params = reply[1].decode(), json.loads(reply[2])
            if existing_ffqn != self.new.ffqn or existing_params != self.new.params:
                raise ConflictError(
                    f"execution {self.new.id} already exists with other inputs ({existing_ffqn} {json.dumps(existing_params)}); "
                    "an idempotency key or execution id must not be reused for a different call"
                )
            existing_tags = json.loads(reply[3]) if len(reply) > 3 and reply[3] else {}
            if existing_tags != self.new.tags:
                raise ConflictError(
                    f"execution {self.new.id} already exists with other tags ({json.dumps(existing_tags, ensure_ascii=False)}); "
                    "an idempotency key or execution id must not be reused for a different call: resend the tags it "
                    "was created with, or use a new key"
                )
            return Created(self.new.id, False)
        return Created(self.new.id, True)
