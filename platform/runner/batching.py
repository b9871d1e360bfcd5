"""Batches of short activities: which entries one worker thread runs back to back.

A light activity attempt takes tens of microseconds; what it costs a runner
is everything around it: a thread hand-off, a lock and a finish write, GIL
hand-offs between 16 threads. Activities whose attempts are known to be
short run in batches instead: one worker runs a batch's attempts one after
the other, then writes all their finishes in one round trip
(`Leases.finish_many`). Activities not seen yet, slow ones and workflows
each get a thread as before, so one slow attempt never holds up others.

"Short" is decided per function from an exponentially weighted moving
average of its attempts' wall time (the usual EWMA smoothing, weight
`ALPHA` for the newest sample), after `MIN_SAMPLES` attempts.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

# An attempt this short (seconds, moving average) counts as short.
SHORT_S = 0.002
ALPHA = 0.2
MIN_SAMPLES = 3
# The most attempts one worker runs in a row before writing their finishes.
MAX_BATCH = 16

T = TypeVar("T")


class AttemptDurations:
    """Moving averages of activity attempt wall times, per function (thread-safe)."""

    def __init__(self, short_s: float = SHORT_S) -> None:
        self.short_s = short_s
        self._lock = threading.Lock()
        self._average: dict[str, float] = {}
        self._samples: dict[str, int] = {}

    def observe(self, ffqn: str, seconds: float) -> None:
        """Count one attempt of `ffqn` that took `seconds` of wall time."""
        with self._lock:
            n = self._samples.get(ffqn, 0)
            previous = self._average.get(ffqn, seconds)
            self._average[ffqn] = seconds if n == 0 else previous + ALPHA * (seconds - previous)
            self._samples[ffqn] = n + 1

    def is_short(self, ffqn: str) -> bool:
        """Whether `ffqn`'s attempts have been short (unknown functions are not)."""
        if self._samples.get(ffqn, 0) < MIN_SAMPLES:
            return False
        return self._average.get(ffqn, math.inf) < self.short_s


@dataclass(frozen=True, slots=True)
class Plan(Generic[T]):
    """How to run what was read: each of `singles` on a thread, each of `batches` on one thread."""

    singles: list[T]
    batches: list[list[T]]


def plan(items: Sequence[T], batchable: Callable[[T], bool], threads: int, max_batch: int = MAX_BATCH) -> Plan[T]:
    """Split `items` between single runs and batches, for `threads` free worker threads.

    Batching only pays when there are more batchable items than threads left
    for them: then they are spread evenly over those threads, at most
    `max_batch` to a batch (beyond that, more batches queue for threads).
    """
    singles = [item for item in items if not batchable(item)]
    short = [item for item in items if batchable(item)]
    room = max(1, threads - len(singles))
    if len(short) <= room:
        return Plan(singles + short, [])
    size = min(max_batch, math.ceil(len(short) / room))
    return Plan(singles, [short[i : i + size] for i in range(0, len(short), size)])
