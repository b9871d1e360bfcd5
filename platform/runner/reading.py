"""What a runner reads, and the read: the queues of functions that can have work, highest priority class first.

The functions come from `QueueSelection` (re-read when the active revision
changes, and every few seconds). Left out are the functions paused as a
whole (store/pauses.py, re-read every `PAUSED_EVERY_S`) and those a limit
holds back (store/limits.py). With priority classes in use
(platform/priorities.py) each function has a queue per class, read highest
first; without, one read covers all, as before classes existed. Short
activities' queues are read `MAX_BATCH` times deeper (see `batching`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..priorities import DEFAULT, by_class, function_of
from ..store.classes import ClassesInUse
from ..store.connection import StoreClient
from ..store.deployments import RevisionCache
from ..store.leases import Leases, QueueEntry
from ..store.limits import LimitGate
from ..store.pauses import PausedFunctions
from .batching import MAX_BATCH, AttemptDurations
from .queues import QueueSelection, read_by_class

# How often a runner reads which functions are paused as a whole (store/pauses.py), in seconds.
PAUSED_EVERY_S = 1.0
# How often the functions that can have work are selected again, at the latest, in seconds (see `queues`).
NAMES_EVERY_S = 5.0


class QueueReader:
    """The queues one runner reads and its reads of them; used by the runner's reader thread only.

    `forget` is handed the digests of components that left every stored revision.
    """

    def __init__(
        self,
        client: StoreClient,
        leases: Leases,
        selection: QueueSelection,
        revisions: RevisionCache,
        gate: LimitGate,
        durations: AttemptDurations,
        *,
        owner: str,
        block_ms: int,
        forget: Callable[[frozenset[str]], None],
    ) -> None:
        self.client = client
        self.leases = leases
        self.selection = selection
        self.revisions = revisions
        self.gate = gate
        self.durations = durations
        self.owner = owner
        self.block_ms = block_ms
        self.forget = forget
        self.classes = ClassesInUse(client)
        self._classes: frozenset[str] = frozenset()
        self.paused = PausedFunctions(client, PAUSED_EVERY_S)
        self._paused: frozenset[str] = frozenset()
        self._functions: list[str] = []
        self._revision_seen = -2
        self._names_read = 0.0

    @property
    def function_count(self) -> int:
        """How many functions' queues are read (paused and held-back ones included)."""
        return len(self._functions)

    def names(self) -> list[str]:
        """The queues to read now: of the functions that can still have work, not paused, not held back, by class."""
        active = self.revisions.active()
        number = active.number if active is not None else -1
        if number != self._revision_seen or time.monotonic() - self._names_read > NAMES_EVERY_S:
            selection = self.selection.select(active)
            self._functions = selection.names
            self._revision_seen = number
            self._names_read = time.monotonic()
            if selection.gone:
                self.forget(selection.gone)
        self._paused = self.paused.get()
        # A paused function's entries wait in its queues until it is resumed; a limited one's until it may start more.
        skipped = self._paused | self.gate.held_back()
        names = [name for name in self._functions if name not in skipped] if skipped else self._functions
        self._classes = self.classes.get() - {DEFAULT}
        if not self._classes:
            return names
        return [name for part in by_class(names, self._classes) for name in part]

    def function_paused(self, ffqn: str) -> bool:
        """Whether `ffqn` is paused as a whole, as last read (at most `PAUSED_EVERY_S` ago)."""
        return ffqn in self._paused

    def read(self, names: list[str], free: int) -> list[QueueEntry]:
        """Entries for `free` threads from queues `names` (from `names()`), waiting for one at most `block_ms`."""
        # Not past the time a function held back by its limits is due again.
        block_ms = self.gate.wait_ms(self.block_ms)
        if self._classes:
            return read_by_class(self.leases, self.owner, names, free, block_ms, self._split_short)
        short = [name for name in names if self.durations.is_short(name)]
        if not short:
            return self.leases.read(self.owner, names, free, block_ms)
        batched = frozenset(short)
        others = [name for name in names if name not in batched]
        entries = self.leases.read_now([(short, free * MAX_BATCH), (others, free)], self.owner)
        return entries or self.leases.read(self.owner, names, free, block_ms)

    def _split_short(self, names: list[str], count: int) -> list[tuple[list[str], int]]:
        """One class's read of `count` entries per queue, split: `MAX_BATCH` times more from short activities' queues."""
        short = [name for name in names if self.durations.is_short(function_of(name))]
        others = [name for name in names if not self.durations.is_short(function_of(name))]
        return [(short, count * MAX_BATCH), (others, count)]


__all__ = ["NAMES_EVERY_S", "PAUSED_EVERY_S", "QueueReader"]
