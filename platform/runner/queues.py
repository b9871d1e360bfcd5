"""Which queues a runner reads: those of the functions that can still have work.

Those are the functions of the active revision, and of every other stored
revision that unfinished executions still name (executions record the
revision they were started from or moved to; their children and scheduled
executions are routed through the active revision). A revision whose
functions the active one also has costs nothing to check. For the others the
`active` index is scanned (store/pins.py) on a thread of its own, never on
the read path: until a scan shows that a revision has no unfinished
executions left, its functions are read. A scan costs about 5 ms per
thousand unfinished executions, so scans are spaced by 50 times their own
duration, and at least 5 s; `platform gc` makes revisions with functions of
their own rare anyway.

What a runner knows of each revision is kept small (its function names and
digests), read once per revision: revisions never change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ..model import Revision
from ..priorities import CLASSES, class_of
from ..errors import DolmenError, NotFoundError
from ..store.deployments import DeploymentStore, RevisionCache
from ..store.leases import Leases, QueueEntry
from ..store.pins import revisions_in_use
from ..store.connection import StoreClient
from ..store.shards import Shards

log = structlog.get_logger("dolmen.runner")

SCAN_EVERY_S = 5.0  # at least this long between scans of the unfinished executions
SCAN_SPACING = 50  # and at least this many times the last scan's duration


@dataclass(frozen=True, slots=True)
class _Facts:
    functions: frozenset[str]
    digests: frozenset[str]


@dataclass(frozen=True, slots=True)
class Selection:
    """The queues to read, and the components that left every stored revision since the last selection."""

    names: list[str]
    gone: frozenset[str]


Reads = Callable[[list[str], int], list[tuple[list[str], int]]]


def read_by_class(
    leases: Leases, consumer: str, names: list[str], count: int, block_ms: int | None, reads: Reads | None = None
) -> list[QueueEntry]:
    """Entries of queues `names` (of several priority classes, see platform/priorities.py), higher classes first.

    Each class is read without waiting, for what the higher ones left of
    `count`; `reads(names, n)` splits one class's read into (queues, count
    per queue) parts (more from short activities', see `batching`). Only when
    every class is empty does it wait, on all of them, up to `block_ms`
    (None: not at all).
    """
    plan = reads or (lambda part, n: [(part, n)])
    entries: list[QueueEntry] = []
    for priority in CLASSES:
        part = [name for name in names if class_of(name) == priority]
        left = count - len(entries)
        if part and left > 0:
            entries += leases.read_now(plan(part, left), consumer)
    if entries or block_ms is None:
        return entries
    return leases.read(consumer, names, count, block_ms)


class QueueSelection:
    """Computes the queues to read; `select` is called by the runner's reader thread only."""

    def __init__(
        self, client: StoreClient, deployments: DeploymentStore, revisions: RevisionCache, shards: Callable[[], Shards] | None = None
    ) -> None:
        self.client = client
        self.shards = shards
        self.deployments = deployments
        self.revisions = revisions
        self._facts: dict[int, _Facts] = {}
        self._digests: frozenset[str] | None = None
        self._lock = threading.Lock()
        # Written by the scan thread: which revisions it looked for, and which of them it found in use.
        self._scanned: frozenset[int] = frozenset()
        self._in_use: frozenset[int] = frozenset()
        self._scanning = False
        self._next_scan = 0.0

    def select(self, active: Revision | None) -> Selection:
        """The functions of the active revision and of the stored revisions that may have unfinished executions."""
        numbers = self.deployments.numbers()
        stored = set(numbers)
        for number in [n for n in self._facts if n not in stored]:
            del self._facts[number]
        for number in numbers:
            if number not in self._facts:
                try:
                    revision = self.revisions.get(number)
                except NotFoundError:  # removed by `platform gc` since `numbers`
                    continue
                self._facts[number] = _Facts(
                    frozenset(revision.runnable()), frozenset(c.digest for c in revision.components)
                )
        # Stubs are never run: no queue of theirs is read (store/completions.py finishes them).
        names: set[str] = active.runnable() if active is not None else set()
        extra = {
            n: facts.functions - names
            for n, facts in self._facts.items()
            if (active is None or n != active.number) and not facts.functions <= names
        }
        with self._lock:
            scanned, in_use = self._scanned, self._in_use
        for number, functions in extra.items():
            if number in in_use or number not in scanned:
                names |= functions
        if extra:
            self._scan(frozenset(extra))
        digests = frozenset(d for facts in self._facts.values() for d in facts.digests)
        if active is not None:
            digests |= {c.digest for c in active.components}
        gone = self._digests - digests if self._digests is not None else frozenset()
        self._digests = digests
        return Selection(sorted(names), frozenset(gone))

    def _scan(self, wanted: frozenset[int]) -> None:
        """Find which of `wanted` still have unfinished executions, on a thread of its own, when one is due."""
        with self._lock:
            if self._scanning or (wanted <= self._scanned and time.monotonic() < self._next_scan):
                return
            self._scanning = True

        def scan() -> None:
            started = time.monotonic()
            try:
                found = revisions_in_use(self.client, wanted, shards=self.shards() if self.shards else None)
            except DolmenError as exc:
                log.warning("cannot tell which old revisions still have executions", error=str(exc))
                found = None
            took = time.monotonic() - started
            with self._lock:
                if found is not None:
                    self._scanned, self._in_use = wanted, frozenset(found)
                self._next_scan = time.monotonic() + max(SCAN_EVERY_S, SCAN_SPACING * took)
                self._scanning = False

        threading.Thread(target=scan, name="dolmen-queue-scan", daemon=True).start()
