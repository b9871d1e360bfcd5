"""Values read from the store: events of a log and the state of an execution."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ..times import iso_ms

Status = Literal["pending", "running", "blocked", "finished"]
# A `stub` execution is never run: it waits (`blocked`) until its result is supplied (store/completions.py).
# An `external` one is queued and leased like an activity, by workers outside the platform (platform/external).
Kind = Literal["activity", "workflow", "stub", "external"]
STATUSES: tuple[Status, ...] = ("pending", "running", "blocked", "finished")

# Event types. Workflow "requests" are the events a workflow's own code causes;
# replay matches the guest's calls against them in order.
CREATED = "created"
ATTEMPT_FAILED = "attempt_failed"
# A lease expired while its runner ran the attempt (the runner died or hung): logged by the next lock.
ATTEMPT_LOST = "attempt_lost"
FINISHED = "finished"
CANCEL_REQUESTED = "cancel_requested"
JOIN_SET_CREATED = "join_set_created"
CHILD_SUBMITTED = "child_submitted"
DELAY_REQUESTED = "delay_requested"
JOIN_NEXT = "join_next"
SCHEDULED = "scheduled"
RESPONSE = "response"
UPGRADED = "upgraded"
# An execution was paused and resumed by request (store/pauses.py): around the code, not matched on replay.
PAUSED = "paused"
RESUMED = "resumed"
UPGRADE_REJECTED = "upgrade_rejected"
# State fields of an execution that a workflow continued as (see `RunContext.continue_as_new`):
# the execution it continues, the chain's first execution, and its position in the chain (1, 2, ...).
CHAIN_FIELDS = ("continued_from", "chain", "chain_index")
REQUEST_TYPES = frozenset({JOIN_SET_CREATED, CHILD_SUBMITTED, DELAY_REQUESTED, JOIN_NEXT, SCHEDULED})


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of an execution's log. `index` is its 0-based position.

    `type` is one of the event types above; `data` its JSON object; `at` ms
    since the epoch; `stream_id` the Redis stream entry id (`MS-SEQ`);
    `size` the bytes of `data`'s JSON as stored.
    """

    index: int
    type: str
    data: dict[str, Any]
    at: int
    stream_id: str = ""
    # Bytes of the event's JSON data as stored: what the history limit counts.
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        """The API's form: `index`, `type`, `at` (ms) and the data's fields, flat."""
        return {"index": self.index, "type": self.type, "at": self.at, **self.data}

    @classmethod
    def from_stream(cls, index: int, stream_id: bytes | str, fields: dict[bytes, bytes] | list[bytes]) -> Event:
        """From a stream entry: a dict (redis-py) or a flat field list (a Lua reply).

        The fields are `t` (type), `d` (JSON data) and `at` (ms); a missing
        one raises KeyError.
        """
        sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
        if isinstance(fields, list):
            fields = {fields[i]: fields[i + 1] for i in range(0, len(fields), 2)}
        raw = fields[b"d"]
        return cls(
            index=index,
            type=fields[b"t"].decode(),
            data=json.loads(raw),
            at=int(fields[b"at"]),
            stream_id=sid,
            size=len(raw),
        )


# Log entries as a write script returns them (`Leases.finish`, `write_pending`): (stream id,
# flat field list) pairs. Above the store they are passed on as they are and decoded only here.
RawEntries = list[Any]


def decode_entries(first_index: int, raw: RawEntries) -> list[Event]:
    """Raw log entries as events, the first of them at log index `first_index`."""
    return [Event.from_stream(first_index + i, sid, fields) for i, (sid, fields) in enumerate(raw)]


def last_entry_id(raw: RawEntries) -> str:
    """The stream id of the last of non-empty raw log entries."""
    sid = raw[-1][0]
    return sid.decode() if isinstance(sid, bytes) else sid


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an execution did not return a value: `kind` (an `ExecutionError.kind`, or `crashed`, `runner_error`, ...) and a message."""

    kind: str
    message: str

    def to_json(self) -> dict[str, str]:
        """`{"kind": ..., "message": ...}`."""
        return {"kind": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an execution finished: a returned value (JSON), a failure, or continued as a new execution.

    `continued_as` is the id of the execution a workflow continued as (see
    `RunContext.continue_as_new`): its chain's result is that execution's.
    """

    value: Any = None
    failure: Failure | None = None
    continued_as: str | None = None

    @property
    def ok(self) -> bool:
        """Whether it did not fail (a returned value, `err` results included, or a continue-as-new)."""
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        """The stored `outcome` field: one of `{"result": VALUE}`, `{"failure": {...}}`, `{"continued_as": ID}`."""
        if self.failure is not None:
            return {"failure": self.failure.to_json()}
        if self.continued_as is not None:
            return {"continued_as": self.continued_as}
        return {"result": self.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        """The inverse of `to_json`."""
        failure = data.get("failure")
        if failure is not None:
            return cls(failure=Failure(failure["kind"], failure["message"]))
        if data.get("continued_as"):
            return cls(continued_as=str(data["continued_as"]))
        return cls(value=data.get("result"))


def continued(raw_outcome: bytes | str | None) -> bool:
    """Whether a state's raw `outcome` field is a continue-as-new (for reads of single fields, without parsing)."""
    if raw_outcome is None:
        return False
    text = raw_outcome.decode() if isinstance(raw_outcome, bytes) else raw_outcome
    return '"continued_as"' in text


@dataclass(frozen=True, slots=True)
class ExecutionState:
    """The derived state hash of an execution (the log is the source of truth).

    Times (`created_at`, `updated_at`, `lock_until`, `not_before`,
    `finished_at`) are ms since the epoch, 0 or None when unset. `version`
    is the fencing token, raised by every lock (and upgrade); `attempt`
    is the current attempt from 1 (0 before the first lock; a workflow's
    grows only when an attempt fails or is lost). `params` is the
    canonical JSON of the call's arguments, one item per WIT parameter.
    `extra` holds the state fields not named here (`js`, `parent_ffqn`,
    `priority`, the chain fields, ...), as strings.
    """

    id: str
    ffqn: str
    kind: Kind
    digest: str
    status: Status
    version: int
    attempt: int
    created_at: int
    updated_at: int
    params: list[Any]
    parent: str | None = None
    owner: str | None = None
    lock_until: int = 0
    not_before: int = 0
    revision: int | None = None
    component: str | None = None
    cancel_requested: bool = False
    outcome: Outcome | None = None
    finished_at: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # KEY -> VALUE, given when it was created (see platform/tags.py).
    tags: dict[str, str] = field(default_factory=dict)
    # Paused by request (store/pauses.py): no runner locks it until it is resumed.
    paused: bool = False
    # Its current lock took over an attempt whose lease had expired (lock.lua's `attempt_lost`).
    took_over: bool = False

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> ExecutionState:
        """From an HGETALL reply of the state hash (field -> value, bytes); KeyError when `id`, `ffqn`, ... are missing."""
        h = {k.decode(): v.decode() for k, v in raw.items()}
        outcome = json.loads(h["outcome"]) if h.get("outcome") else None
        known = {
            "id", "ffqn", "kind", "digest", "status", "version", "attempt", "created_at", "updated_at",
            "params", "parent", "owner", "lock_until", "not_before", "rev", "component", "cancel",
            "outcome", "finished_at", "tags", "paused",
        }  # fmt: skip
        # Write-protocol bookkeeping (remembered write ids and replies), not execution data.
        internal = {"wid", "wreply", "cid", "creply", "uid", "ureply", "cwid", "rid", "rreply", "pid", "preply", "lost_v"}
        return cls(
            id=h["id"],
            ffqn=h["ffqn"],
            kind=h["kind"],  # type: ignore[arg-type]
            digest=h["digest"],
            status=h["status"],  # type: ignore[arg-type]
            version=int(h.get("version", "0")),
            attempt=int(h.get("attempt", "0")),
            created_at=int(h["created_at"]),
            updated_at=int(h.get("updated_at", h["created_at"])),
            params=json.loads(h.get("params", "[]")),
            parent=h.get("parent") or None,
            owner=h.get("owner") or None,
            lock_until=int(h.get("lock_until") or 0),
            not_before=int(h.get("not_before") or 0),
            revision=int(h["rev"]) if h.get("rev") else None,
            component=h.get("component") or None,
            cancel_requested=h.get("cancel") == "1",
            outcome=None if outcome is None else Outcome.from_json(outcome),
            finished_at=int(h["finished_at"]) if h.get("finished_at") else None,
            extra={k: v for k, v in h.items() if k not in known and k not in internal},
            tags=json.loads(h["tags"]) if h.get("tags") else {},
            paused=h.get("paused") == "1",
            took_over=bool(h.get("lost_v")) and h.get("lost_v") == h.get("version"),
        )

    @property
    def priority(self) -> str:
        """Its priority class (platform/priorities.py): stored only when not normal."""
        return self.extra.get("priority") or "normal"

    @property
    def live(self) -> bool:
        """Unfinished, or finished by continuing as new (its chain runs on, on the same digest or a deployed one)."""
        return self.status != "finished" or (self.outcome is not None and self.outcome.continued_as is not None)

    def to_json(self) -> dict[str, Any]:
        """The API's form: times as ISO 8601 UTC strings, optional fields only when set, and the outcome's fields."""
        data: dict[str, Any] = {
            "execution_id": self.id,
            "ffqn": self.ffqn,
            "kind": self.kind,
            "status": self.status,
            "component_digest": self.digest,
            "created_at": iso_ms(self.created_at),
            "updated_at": iso_ms(self.updated_at),
            "attempt": self.attempt,
            "params": self.params,
        }
        if self.parent:
            data["parent_id"] = self.parent
        if self.tags:
            data["tags"] = self.tags
        if self.priority != "normal":
            data["priority"] = self.priority
        for name in CHAIN_FIELDS:
            if self.extra.get(name):
                data[name] = int(self.extra[name]) if name == "chain_index" else self.extra[name]
        if self.cancel_requested:
            data["cancel_requested"] = True
        if self.paused and self.status != "finished":
            data["paused"] = True
        if self.kind == "stub" and self.status != "finished":
            data["waiting_for"] = "result"  # supplied from outside: PUT /v1/executions/{id}/result
        if self.outcome is not None:
            data.update(self.outcome.to_json())
            if self.finished_at:
                data["finished_at"] = iso_ms(self.finished_at)
        return data

