"""Removing finished trees by hand (`platform executions purge`), whatever their retention.

The candidates are root executions from the `executions` index created up to
the `before` time (an execution finishes after it is created), kept if
finished by then and matching the filters; each is then walked and removed
as a whole like the retention sweep does (store/trees.py). A tree whose
root finished but whose descendants still run is kept and reported. A dry
run walks the same trees and writes nothing.
"""

from __future__ import annotations

import json
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


from ..errors import UsageError
from ..times import iso_ms
from . import keys, outbox
from .connection import Redis, map_redis_errors
from .outcomes import OUTCOMES, outcome_label, outcome_matches
from .records import Outcome
from .scripts import Scripts
from .shards import Shards
from .trees import Tree, clean_gone, read_trees, remove_trees

# What `--status` may name: every finished root, its kind of outcome, or a failure kind (README "Event log").
PURGE_STATUSES = ("finished", *OUTCOMES)

_PAGE = 1000
_FIELDS = ("status", "ffqn", "finished_at", "outcome")


@dataclass(frozen=True, slots=True)
class PurgeFilter:
    """Which finished trees to remove: by their root's finish time (ms), function and outcome.

    Raises `UsageError` for a `status` not in `PURGE_STATUSES`.
    """

    before_ms: int
    ffqn: str | None = None
    # None or 'finished': any; 'ok', 'err', 'continued', 'failed' (any failure) or a failure kind.
    status: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in PURGE_STATUSES:
            if self.status in ("pending", "running", "blocked"):
                raise UsageError(
                    f"only finished executions are purged, not {self.status} ones (cancel one first with "
                    f"`platform executions cancel ID`); pick one of {', '.join(PURGE_STATUSES)}"
                )
            raise UsageError(f"'{self.status}' is not a status to purge by; pick one of {', '.join(PURGE_STATUSES)}")

    def matches(self, ffqn: str, finished_at: int, outcome: Outcome | None) -> bool:
        """Whether a root of `ffqn` that finished at `finished_at` (ms; 0: not finished) with `outcome` is picked."""
        if not finished_at or finished_at > self.before_ms:
            return False
        if self.ffqn is not None and ffqn != self.ffqn:
            return False
        if self.status in (None, "finished"):
            return True
        return outcome_matches(outcome, self.status)


@dataclass(frozen=True, slots=True)
class PurgedTree:
    """A tree removed (or, in a dry run, that would be)."""

    execution_id: str
    ffqn: str
    outcome: str
    finished_at: int
    executions: int

    def to_json(self) -> dict[str, Any]:
        """The JSON output's form; `finished_at` as ISO 8601 UTC."""
        return {
            "execution_id": self.execution_id,
            "ffqn": self.ffqn,
            "outcome": self.outcome,
            "finished_at": iso_ms(self.finished_at),
            "executions": self.executions,
        }


@dataclass(frozen=True, slots=True)
class KeptTree:
    """A matching tree left in place, and why."""

    execution_id: str
    ffqn: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The JSON output's form."""
        return {"execution_id": self.execution_id, "ffqn": self.ffqn, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge removed (or would remove) and what it kept."""

    dry_run: bool
    purged: tuple[PurgedTree, ...]
    kept: tuple[KeptTree, ...]

    @property
    def executions(self) -> int:
        """How many executions the purged trees held."""
        return sum(t.executions for t in self.purged)

    def to_json(self) -> dict[str, Any]:
        """The JSON output of `platform executions purge --json`."""
        return {
            "dry_run": self.dry_run,
            "trees": len(self.purged),
            "executions": self.executions,
            "purged": [t.to_json() for t in self.purged],
            "kept": [t.to_json() for t in self.kept],
        }


def purge_trees(scripts: Scripts, selection: PurgeFilter, *, dry_run: bool = False, batch: int = 100) -> PurgeReport:
    """Remove every finished tree `selection` picks (nothing with `dry_run`), `batch` trees per round of scripts."""
    client = scripts.client
    purged: list[PurgedTree] = []
    kept: list[KeptTree] = []
    with map_redis_errors():
        roots, gone = _candidates(client, scripts.shards, selection)
        if not dry_run:
            clean_gone(scripts, gone)  # removals another purge or sweep left half done
        for start in range(0, len(roots), batch):
            trees = [t for t in read_trees(client, roots[start : start + batch]) if t.exists]
            ready: list[Tree] = []
            for tree in trees:
                if tree.unfinished:
                    kept.append(_unfinished(tree))
                elif selection.matches(tree.ffqn, tree.finished_at, tree.outcome):
                    ready.append(tree)
            if dry_run:
                purged += [_purged(tree) for tree in ready]
                continue
            results = remove_trees(scripts, ready)
            retry = [t.root for t in ready if results[t.root] in ("outbox", "changed")]
            if retry:
                # Messages not yet delivered (or a tree read mid-change): deliver them and look once more.
                outbox.flush(scripts, retry)
                again = [t for t in read_trees(client, retry) if t.exists and not t.unfinished]
                results.update(remove_trees(scripts, again))
            for tree in ready:
                result = results[tree.root]
                if result == "removed":
                    purged.append(_purged(tree))
                elif result != "missing":
                    kept.append(KeptTree(tree.root, tree.ffqn, f"it changed while it was removed ({result}); purge again"))
    return PurgeReport(dry_run, tuple(purged), tuple(kept))


def _candidates(client: Redis, shards: Shards, selection: PurgeFilter) -> tuple[list[str], list[str]]:
    """Finished roots that match `selection`, oldest first; and listed roots whose state is gone."""
    roots: list[str] = []
    gone: list[str] = []
    for page in _merged_pages(client, shards.every("executions"), selection.before_ms):
        pipe = client.pipeline(transaction=False)
        for root in page:
            pipe.hmget(keys.state(root), *_FIELDS)
        for root, raw in zip(page, pipe.execute()):
            status, ffqn, finished_at, outcome = (None if v is None else v.decode() for v in raw)
            if status is None:
                gone.append(root)
            elif status == "finished" and selection.matches(
                ffqn or "", int(finished_at or 0), Outcome.from_json(json.loads(outcome)) if outcome else None
            ):
                roots.append(root)
    return roots, gone


def _merged_pages(client: Redis, index: list[str], before_ms: int) -> Iterator[list[str]]:
    """Root ids from every shard's `executions` index created up to `before_ms`, oldest first, a page at a time."""
    if len(index) == 1:
        yield from _pages(client, index[0], before_ms)
        return
    merged = heapq.merge(*(_rows(client, key, before_ms) for key in index), key=lambda row: row[1])
    while page := [root for root, _ in itertools.islice(merged, _PAGE)]:
        yield page


def _rows(client: Redis, key: str, before_ms: int) -> Iterator[tuple[str, float]]:
    for page in _scored_pages(client, key, before_ms):
        yield from page


def _pages(client: Redis, key: str, before_ms: int) -> Iterator[list[str]]:
    """Root ids from one shard's `executions` index created up to `before_ms`, a page at a time."""
    for page in _scored_pages(client, key, before_ms):
        yield [root for root, _ in page]


def _scored_pages(client: Redis, key: str, before_ms: int) -> Iterator[list[tuple[str, float]]]:
    """(root id, created ms) from one shard's `executions` index created up to `before_ms`, a page at a time.

    Each page starts at the last score read (skipping the members at that
    score already read), so a page costs the same however far the walk is.
    """
    low: float | None = None
    skip = 0
    while True:
        rows: list[tuple[bytes, float]] = client.zrangebyscore(  # type: ignore[assignment]
            key, "-inf" if low is None else low, before_ms, start=skip, num=_PAGE, withscores=True
        )
        if not rows:
            return
        yield [(raw.decode(), score) for raw, score in rows if b"." not in raw]
        last = rows[-1][1]
        at_last = sum(1 for _, score in rows if score == last)
        skip = skip + at_last if last == low else at_last
        low = last


def _purged(tree: Tree) -> PurgedTree:
    return PurgedTree(tree.root, tree.ffqn, outcome_label(tree.outcome), tree.finished_at, len(tree.members))


def _unfinished(tree: Tree) -> KeptTree:
    waiting = tree.unfinished
    names = ", ".join(waiting[:3]) + (", ..." if len(waiting) > 3 else "")
    return KeptTree(
        tree.root,
        tree.ffqn,
        f"its root finished but {names} {'is' if len(waiting) == 1 else 'are'} not finished yet; "
        "a tree goes only once all of it has finished",
    )

