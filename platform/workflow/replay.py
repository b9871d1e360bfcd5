"""Replay: matching a workflow's requests against its log, without any I/O.

The log interleaves two kinds of events. Requests (`join_set_created`,
`child_submitted`, `delay_requested`, `join_next`, `scheduled`) are caused by
the workflow's own code and must come back in the same order with the same
content on every replay. Responses (`response`) are appended by others when a
child finishes or a delay fires; a join set hands them out in log order, so
replay sees the same order no matter how the race went live.

`Replay.request` is the heart: the next logged request must equal what the
code asks for now, or the execution is non-deterministic; past the end of the
log a request is new and the caller appends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import NonDeterminismError
from ..ids import seed_from_id
from ..store.records import (
    CANCEL_REQUESTED,
    CHILD_SUBMITTED,
    CREATED,
    DELAY_REQUESTED,
    FINISHED,
    JOIN_NEXT,
    JOIN_SET_CREATED,
    PAUSED,
    REQUEST_TYPES,
    RESPONSE,
    RESUMED,
    SCHEDULED,
    Event,
)

# The fields that identify a request of each type; other fields (times,
# derived ids) follow from these and the position in the log.
_IDENTITY: dict[str, tuple[str, ...]] = {
    JOIN_SET_CREATED: ("join_set", "closing"),
    CHILD_SUBMITTED: ("join_set", "ffqn", "params"),
    DELAY_REQUESTED: ("join_set", "duration_ms"),
    JOIN_NEXT: ("join_set",),
    SCHEDULED: ("ffqn", "params", "schedule"),
}


@dataclass(frozen=True, slots=True)
class Request:
    """Something the workflow's code asks the host to do, as its log event."""

    type: str
    data: dict[str, Any]

    def describe(self) -> str:
        """As `describe_request`: `child_submitted(ffqn=..., params=[...], join_set=g1)`."""
        return describe_request(self.type, self.data)


def describe_request(event_type: str, data: dict[str, Any]) -> str:
    """`child_submitted(ffqn=..., params=[...], join_set=g1)`: for error messages."""
    names = _IDENTITY.get(event_type, tuple(sorted(data)))
    parts = []
    for name in names:
        if name in data and data[name] is not None:
            parts.append(f"{name}={json.dumps(data[name], sort_keys=True, separators=(',', ':'))}")
    return f"{event_type}({', '.join(parts)})"


def _same(a: dict[str, Any], b: dict[str, Any], event_type: str) -> bool:
    return all(json_equal(a.get(name), b.get(name)) for name in _IDENTITY[event_type])


def json_equal(a: Any, b: Any) -> bool:
    """JSON values equal as JSON: `1`, `1.0` and `true` differ, object key order does not."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(value, b[key]) for key, value in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(map(json_equal, a, b))
    return a == b


@dataclass
class Replay:
    """A workflow's log and how far the current run has consumed it."""

    execution_id: str
    events: list[Event]
    cursor: int = 0  # index into `requests` of the next request to match
    now_ms: int = 0  # logical time: the latest processed event's time
    requests: list[Event] = field(default_factory=list)
    _consumed: set[str] = field(default_factory=set)
    _children: int = 0
    _delays: int = 0
    _join_sets: int = 0
    _by_id: dict[str, Event] = field(default_factory=dict)
    _by_join_set: dict[str, list[Event]] = field(default_factory=dict)
    _taken: dict[str, int] = field(default_factory=dict)  # per join set: responses handed out
    _cancel_requested: bool = False
    # Whether the log's last `paused`/`resumed` is a pause (store/pauses.py): the run unloads at its next wait.
    _paused: bool = False
    # Bytes of the logged events' JSON data (`Event.size`): what the history limit counts.
    log_bytes: int = 0

    def __post_init__(self) -> None:
        events, self.events = self.events, []
        self.extend(events)
        if self.events:
            self.now_ms = self.events[0].at

    # ------------------------------------------------------------ log growth

    def extend(self, new_events: list[Event]) -> None:
        """Events appended by others (responses, cancellation) or by us."""
        for event in new_events:
            self.events.append(event)
            self.log_bytes += event.size
            if event.type in REQUEST_TYPES:
                self.requests.append(event)
            elif event.type == CANCEL_REQUESTED:
                self._cancel_requested = True
            elif event.type in (PAUSED, RESUMED):
                self._paused = event.type == PAUSED
            elif event.type == RESPONSE:
                self._by_id[_response_id(event)] = event
                js = event.data.get("join_set")
                if js is not None:
                    self._by_join_set.setdefault(js, []).append(event)

    @property
    def paused(self) -> bool:
        """Whether the execution was paused (and not resumed) in the log read so far."""
        return self._paused

    @property
    def length(self) -> int:
        """How many events the log holds (as read so far)."""
        return len(self.events)

    @property
    def replaying(self) -> bool:
        """True while logged requests remain to be matched."""
        return self.cursor < len(self.requests)

    # ------------------------------------------------------------- matching

    def request(self, req: Request) -> Event | None:
        """Match `req` against the log: the logged event, or None when it is new.

        Raises `NonDeterminismError` naming the event index, the logged request
        and the requested one when they differ.
        """
        if self.cursor < len(self.requests):
            logged = self.requests[self.cursor]
            if logged.type != req.type or not _same(logged.data, req.data, req.type):
                raise NonDeterminismError(
                    f"non-determinism at event {logged.index}: the log holds {describe_request(logged.type, logged.data)} "
                    f"but the code asked for {req.describe()}",
                    execution_id=self.execution_id,
                    event_index=logged.index,
                    logged=describe_request(logged.type, logged.data),
                    requested=req.describe(),
                )
            self.cursor += 1
            self._advance(logged)
            self._count(logged.type)
            return logged
        self._count(req.type)
        return None

    def appended(self, new_events: list[Event]) -> None:
        """The log's tail after our own new requests were appended: all processed."""
        self.extend(new_events)
        self.cursor = len(self.requests)

    def tick(self, at_ms: int) -> None:
        """A new request is being made at `at_ms` (it will be logged with that time)."""
        self.now_ms = max(self.now_ms, at_ms)

    def _count(self, event_type: str) -> None:
        # A `scheduled` execution has its own root id (recorded in the event), but
        # it still takes a child position: logs written when it was named
        # `<id>.<n>` number the children after it that way, and replay must
        # derive the same child ids from them.
        if event_type in (CHILD_SUBMITTED, SCHEDULED):
            self._children += 1
        elif event_type == DELAY_REQUESTED:
            self._delays += 1
        elif event_type == JOIN_SET_CREATED:
            self._join_sets += 1

    def _advance(self, event: Event) -> None:
        self.now_ms = max(self.now_ms, event.at)

    # ----------------------------------------------------------- derived ids

    def next_child_id(self) -> str:
        """The id the next submitted child gets."""
        return f"{self.execution_id}.{self._children + 1}"

    def next_delay_id(self) -> str:
        """The id the next requested delay gets: `<execution id>.d<n>`."""
        return f"{self.execution_id}.d{self._delays + 1}"

    def next_join_set_name(self) -> str:
        """The name the next join set gets: `g<n>`."""
        return f"g{self._join_sets + 1}"

    # ------------------------------------------------------------ responses

    def response_for(self, response_id: str) -> Event | None:
        """The response carrying `response_id` (a child or delay id), if logged."""
        return self._by_id.get(response_id)

    def take_response(self, response_id: str) -> Event | None:
        """Consume the response for `response_id` (direct calls and sleeps)."""
        event = self.response_for(response_id)
        if event is not None:
            self._consumed.add(response_id)
            self._advance(event)
        return event

    def take_next(self, join_set: str) -> Event | None:
        """Consume the first unconsumed response of `join_set`, in log order."""
        responses = self._by_join_set.get(join_set, [])
        position = self._taken.get(join_set, 0)
        while position < len(responses):
            event = responses[position]
            position += 1
            rid = _response_id(event)
            if rid not in self._consumed:
                self._taken[join_set] = position
                self._consumed.add(rid)
                self._advance(event)
                return event
        self._taken[join_set] = position
        return None

    def is_consumed(self, response_id: str) -> bool:
        """Whether the response for `response_id` was already handed to the code in this run."""
        return response_id in self._consumed

    # ------------------------------------------------------------ the rest

    @property
    def cancel_requested(self) -> bool:
        """Whether the log read so far holds a `cancel_requested` event."""
        return self._cancel_requested

    @property
    def params(self) -> list[Any]:
        """The execution's params (canonical JSON, one per WIT parameter), from its `created` event.

        Raises `NonDeterminismError` when the log has no `created` event.
        """
        for event in self.events:
            if event.type == CREATED:
                return list(event.data["params"])
        raise NonDeterminismError(f"execution {self.execution_id} has no `created` event")

    @property
    def seed(self) -> str:
        """The workflow's randomness seed: recorded in `created`, else derived from its id (older logs)."""
        for event in self.events:
            if event.type == CREATED:
                seed = event.data.get("seed")
                return seed if isinstance(seed, str) else seed_from_id(self.execution_id)
        return seed_from_id(self.execution_id)

    @property
    def finished(self) -> Event | None:
        """The log's `finished` event, if it has one."""
        for event in reversed(self.events):
            if event.type == FINISHED:
                return event
        return None

    def leftover(self) -> Event | None:
        """The first logged request the code did not ask for (it returned first)."""
        return self.requests[self.cursor] if self.cursor < len(self.requests) else None

    def leftover_error(self) -> NonDeterminismError | None:
        """The `NonDeterminismError` (returned, not raised) for a `leftover` request; None when there is none."""
        left = self.leftover()
        if left is None:
            return None
        logged = describe_request(left.type, left.data)
        return NonDeterminismError(
            f"non-determinism at event {left.index}: the log holds {logged} but the code returned without asking for it",
            execution_id=self.execution_id,
            event_index=left.index,
            logged=logged,
            requested="return",
        )


def _response_id(event: Event) -> str:
    return event.data.get("child_id") or event.data.get("delay_id") or ""
