"""What runners hold and read: queue entries, leases, a held-back commit, a refused lock, a script call.

Frozen values only; `leases` does the I/O that makes and uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ids import ExecutionId
from . import keys
from .creates import NewExecution
from .clock import now_ms
from .records import Event, ExecutionState
from .shards import Shards


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One write script call, and the outbox messages to carry out once it answered ok."""

    name: str
    keys: list[str]
    args: list[Any]
    messages: list[str]

    def as_args(self) -> tuple[str, list[str], list[Any]]:
        """`(script name, keys, args)`, as `Scripts.__call__` and `GroupCommit.send` take a call."""
        return self.name, self.keys, self.args


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One message read from a function's queue: `ffqn` names the queue (with a priority class's suffix, see
    platform/priorities.py), `entry_id` is the stream entry's id."""

    ffqn: str
    entry_id: str
    execution_id: str


@dataclass(frozen=True, slots=True)
class Lease:
    """A locked execution: the state at lock time and the fencing token."""

    state: ExecutionState
    owner: str
    # A workflow's log as read with the lock (None when it was not read).
    events: list[Event] | None = None
    # Whether the lock read only the log's tail after what the runner already held.
    tail_only: bool = False

    @property
    def id(self) -> str:
        """The locked execution's id."""
        return self.state.id

    @property
    def version(self) -> str:
        """The fencing token every write under this lease carries (the state's `version` at lock time)."""
        return str(self.state.version)

    @property
    def root(self) -> str:
        """The id of the execution's tree root (its keys' hash tag)."""
        return ExecutionId(self.state.id).root


@dataclass(frozen=True, slots=True)
class PendingCommit:
    """A workflow's commit held back while the activity it calls runs inline.

    Written together with that child's finish (`Leases.finish(...,
    parent_commit=)`): one round trip for request, creation, result and
    response. The child is an activity, which runs at least once anyway: had
    the runner died before this write, replay asks for the child again.
    """

    lease: Lease
    # The requests to log: (event type, data, ms).
    events: list[tuple[str, dict[str, Any], int]]
    creates: list[NewExecution]
    # The stream id of the last log entry the runner had read.
    last_seen: str
    # When the call was made (ms): the child's creation time, however late it is written.
    at: int = field(default_factory=lambda: now_ms())
    # How many log entries the runner had read, up to `last_seen` (None: unchecked; see `commit_call`).
    seen_length: int | None = None


@dataclass(frozen=True, slots=True)
class LockRefused:
    """Why an execution could not be locked: finished, locked, blocked, early, paused, missing.

    `until` (ms) is when the current lease ends (`locked`) or the execution may run (`early`); 0 otherwise.
    """

    reason: str
    until: int = 0


def lease_from_lock(reply: Any, owner: str, known: Sequence[Event] | None) -> Lease | LockRefused:
    """Decode lock.lua's reply: the lease (with the log, or its tail after `known`), or why it was refused."""
    status = reply[0].decode()
    if status != "ok":
        return LockRefused(status, int(reply[1]) if len(reply) > 1 else 0)
    flat = reply[1]
    raw = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
    events = None
    if len(reply) > 3 and known:
        first = len(known)
        events = [*known, *(Event.from_stream(first + i, sid, fields) for i, (sid, fields) in enumerate(reply[2]))]
    elif len(reply) > 2:
        events = [Event.from_stream(i, sid, fields) for i, (sid, fields) in enumerate(reply[2])]
    return Lease(ExecutionState.from_hash(raw), owner, events, tail_only=len(reply) > 3 and bool(known))


def queue_entries(reply: Any) -> list[QueueEntry]:
    """Decode XREADGROUP's reply: the entries that still name an execution (deleted ones come back empty)."""
    out: list[QueueEntry] = []
    for stream, items in reply or []:
        ffqn = Shards.queue_ffqn(stream.decode())
        for sid, fields in items:
            if fields and b"id" in fields:
                out.append(QueueEntry(ffqn, sid.decode(), fields[b"id"].decode()))
    return out


def ack_entries(pipe: Any, entries: Sequence[QueueEntry]) -> None:
    """Queue on `pipe` the removal of queue entries done with (acked and deleted)."""
    for entry in entries:
        # The entry's stream follows from its execution: writers pick the shard by the id too.
        stream = pipe.shards.queue(entry.ffqn, entry.execution_id)
        pipe.xack(stream, keys.QUEUE_GROUP, entry.entry_id)
        pipe.xdel(stream, entry.entry_id)
