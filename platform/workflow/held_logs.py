"""The event logs of the workflows a runner unloaded last, so that resuming one reads only its log's tail.

A workflow that waits by unloading is locked again when its response lands,
and the lock reads its log for the replay. Reading the whole log every time
makes a long workflow quadratic work inside one Lua script, which blocks
Valkey while it runs. A runner keeps what it read instead, and the next lock
of the same execution on this runner asks only for the entries after it
(`Leases.lock(known=...)`); the lock script checks that the log's length is
what was held plus the tail (an event log is append-only), else it sends the
whole log. A resume on another runner reads the whole log, as before.

Bounded: logs beyond `max_bytes` (their events' stored data plus a fixed
overhead per event) are dropped, least recently kept first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from ..store.records import Event

# Bytes a decoded event holds besides its JSON data (the objects around it), for the bound.
EVENT_OVERHEAD = 400
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class HeldLogs:
    """Logs by execution id, dropped least recently kept first beyond `max_bytes`. Thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._logs: OrderedDict[str, tuple[tuple[Event, ...], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        # Locks that read only a tail (a counter for tests and the runner's log lines).
        self.tail_reads = 0

    @property
    def held_bytes(self) -> int:
        """The bytes the held logs count for (their events' data plus `EVENT_OVERHEAD` each)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._logs)

    def take(self, execution_id: str) -> tuple[Event, ...] | None:
        """The log held for `execution_id`, no longer held (its run keeps it again if it unloads)."""
        with self._lock:
            held = self._logs.pop(execution_id, None)
            if held is None:
                return None
            self._bytes -= held[1]
            return held[0]

    def keep(self, execution_id: str, events: Sequence[Event]) -> None:
        """Hold `events`, the whole log as a run of `execution_id` left it (indexes 0..n-1)."""
        if not events or events[-1].index != len(events) - 1 or not events[-1].stream_id:
            return  # not the log's exact start: never offered as one
        size = sum(e.size for e in events) + EVENT_OVERHEAD * len(events)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._logs.pop(execution_id, None)
            if old is not None:
                self._bytes -= old[1]
            self._logs[execution_id] = (tuple(events), size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._logs.popitem(last=False)
                self._bytes -= dropped
