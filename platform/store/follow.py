"""Following an execution's log live: the part the sync and async stores share.

`ExecutionStore.follow` and `AsyncExecutions.follow` read the whole log
(XRANGE), then wait with XREAD BLOCK for what is appended after the last
entry seen, at most `MAX_BLOCK_MS` a call so a dead server is noticed, until
the log holds `finished` or the time is up. They hand out the events whose
index is above `after` (what a reader that reconnects has already seen), and
None for each blocking read that came back empty, so a caller can send a
keep-alive or notice that its own client went away.

Which key to read, from which entry and for how long, how a reply decodes
into events and when to stop are decided here, without I/O; the two stores
only send the commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import keys
from .connection import MAX_BLOCK_MS
from .records import FINISHED, Event

# One entry of a stream as redis-py decodes it: (stream id, fields).
Entry = tuple[bytes | str, dict[bytes, bytes]]


def read_events(reply: Any, first_index: int) -> list[Event]:
    """The events of an XREAD reply on one log (`[[key, entries]]`, nil when it timed out), the first at `first_index`.

    KeyError when an entry lacks a field (`Event.from_stream`).
    """
    return _decode(_entries(reply), first_index)


def _entries(reply: Any) -> list[Entry]:
    return list(reply[0][1]) if reply else []


def _decode(entries: Sequence[Entry], first_index: int) -> list[Event]:
    return [Event.from_stream(first_index + i, sid, fields) for i, (sid, fields) in enumerate(entries)]


@dataclass(frozen=True, slots=True)
class Read:
    """One XREAD to send: its streams argument (`{log key: last id seen}`) and how long it may block (ms)."""

    streams: dict[str, str]
    block_ms: int


class LogFollower:
    """Where a live read of one execution's log is: what to read next, what to hand out, when it is over."""

    def __init__(self, execution_id: str, *, after: int, deadline: float) -> None:
        """`after`: hand out only events with a greater index (-1: all); `deadline`: when to stop (monotonic s)."""
        self.key = keys.log(execution_id)
        self.after = after
        self.deadline = deadline
        self.last_id = "0-0"  # the stream id of the last entry seen: the next XREAD starts after it
        self.count = 0  # entries seen, so the index of the next one
        self.finished = False

    def take_log(self, entries: Sequence[Entry]) -> list[Event]:
        """The events to hand out of the log as XRANGE read it (the whole log, from its first entry)."""
        return self._take(entries)

    def next_read(self, now: float) -> Read | None:
        """The XREAD to send at monotonic time `now` (s); None once the log holds `finished` or the deadline passed.

        It blocks for what is left until the deadline, at least 1 ms and at most `MAX_BLOCK_MS`.
        """
        remaining = self.deadline - now
        if self.finished or remaining <= 0:
            return None
        return Read({self.key: self.last_id}, max(1, int(min(remaining * 1000, MAX_BLOCK_MS))))

    def take_read(self, reply: Any) -> list[Event | None]:
        """What an XREAD reply hands out: its events past `after`, or `[None]` when the read timed out empty."""
        entries = _entries(reply)
        if not entries:
            return [None]
        return list(self._take(entries))

    def _take(self, entries: Sequence[Entry]) -> list[Event]:
        out: list[Event] = []
        for event in _decode(entries, self.count):
            self.last_id, self.count = event.stream_id, self.count + 1
            if event.index > self.after:
                out.append(event)
            if event.type == FINISHED:
                self.finished = True  # nothing is appended after `finished`
                break
        return out
