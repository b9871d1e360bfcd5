"""Retention: a finished execution tree is removed once its retention has passed.

An execution records its retention when it is created: its function's
`retention` in the deployment it was submitted under
(`model.ComponentConfig.retention_for`), else DEFAULT_RETENTION_MS.
Only a root's counts: the tree (the root and all its descendants) goes as a
whole.

When a root finishes, the script that writes its `finished` event (finish.lua,
or cancel.lua for a pending activity) also writes an outbox message that lists
the root in `dolmen:expiry`, scored by its finish time plus its retention.
Like every effect outside a tree's slot it is carried out after the script
answered ok, by the writer, or by the scheduler's outbox sweep if the writer
died: a finished root is never missed, and the script stays on one slot.

The scheduler's `RetentionSweep` takes the due roots in bounded batches, walks
each tree and removes it (store/trees.py). A tree with an unfinished
descendant (a child of a `complete` join set left running when its parent was
cancelled) waits and is looked at again later: soon after its root finished,
then at most every RECHECK_MAX_MS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


from . import outbox
from .connection import Redis, map_redis_errors
from . import shards as sharding
from .scripts import Scripts
from .shards import Shards
from .trees import IDEMPOTENCY_FIELD, clean_gone, read_trees, remove_trees

# How long a finished tree is kept when its deployment says nothing: 7 days,
# as long as an idempotency key stays bound (executions.IDEMPOTENCY_TTL_S).
DEFAULT_RETENTION_MS = 7 * 86_400_000
# A root's state field: its retention in ms, recorded when it is created.
RETENTION_FIELD = "retention_ms"
# A tree whose descendants still run is looked at again after half the time
# since its root finished, within these bounds.
RECHECK_MIN_MS = 1000
RECHECK_MAX_MS = 60_000


def root_fields(retention_ms: int | None, idempotency_key: str | None = None) -> dict[str, str]:
    """State fields of a new root: its retention (when not the default) and its idempotency key."""
    fields: dict[str, str] = {}
    if retention_ms is not None:
        fields[RETENTION_FIELD] = str(retention_ms)
    if idempotency_key is not None:
        fields[IDEMPOTENCY_FIELD] = idempotency_key
    return fields


def expires_at(finished_at: int, state_extra: Mapping[str, str]) -> int:
    """When the tree of a root that finished at `finished_at` may be removed."""
    recorded = state_extra.get(RETENTION_FIELD)
    return finished_at + (int(recorded) if recorded else DEFAULT_RETENTION_MS)


def expire_message(root: str, finished_at: int, state_extra: Mapping[str, str]) -> str:
    """The outbox message a root's finishing script writes (see the module docstring)."""
    return outbox.expire_msg(root, expires_at(finished_at, state_extra))


def recheck_at(now_ms: int, finished_at: int) -> int:
    """When to look again at a tree whose root finished at `finished_at` but whose descendants still run."""
    return now_ms + min(RECHECK_MAX_MS, max(RECHECK_MIN_MS, (now_ms - finished_at) // 2))


@dataclass
class RetentionSweep:
    """Removes the trees whose retention ended, at most `batch` trees per `step()`.

    `backlog` says that the last step found a full batch due: the scheduler
    then steps again at once instead of waiting for its next sweep.
    """

    scripts: Scripts
    batch: int = 100
    removed: int = 0
    backlog: bool = False
    # The expiry shards this sweep takes from (a scheduler's share, see `Shards.mine`); all when None.
    shards: list[int] | None = None

    def step(self, now_ms: int) -> int:
        """Remove (or postpone) the next due trees, at most `batch` of them; returns how many were removed."""
        client = self.scripts.client
        shards = self.scripts.shards
        mine = range(shards.count) if self.shards is None else self.shards
        with map_redis_errors():
            read = client.pipeline(transaction=False)
            for shard in mine:
                read.zrangebyscore(shards.key(shard, "expiry"), "-inf", now_ms, start=0, num=self.batch, withscores=True)
            found: list[list[tuple[bytes, float]]] = read.execute()
            # The `batch` due first across the shards; a backlog if any shard may hold more.
            rows = sorted((row for part in found for row in part), key=lambda row: row[1])
            self.backlog = len(rows) > self.batch or any(len(part) == self.batch for part in found)
            due = [raw for raw, _ in rows[: self.batch]]
            if not due:
                return 0
            trees = read_trees(client, [raw.decode() for raw in due])
            ready = [t for t in trees if t.exists and not t.unfinished]
            results = remove_trees(self.scripts, ready)
            later: dict[str, int] = {t.root: recheck_at(now_ms, t.finished_at) for t in trees if t.exists and t.unfinished}
            later.update({root: now_ms + RECHECK_MIN_MS for root, result in results.items() if result not in ("removed", "missing")})
            if later:
                pipe = client.pipeline(transaction=False)
                for root, at in later.items():
                    pipe.zadd(shards.expiry(root), {root: at}, xx=True)  # xx: never list again a tree removed meanwhile
                pipe.execute()
            clean_gone(self.scripts, [t.root for t in trees if not t.exists] + [r for r, v in results.items() if v == "missing"])
            # Undelivered messages of a finished tree: deliver them now, so that the next look removes it.
            outbox.flush(self.scripts, [root for root, result in results.items() if result == "outbox"])
        removed = sum(result == "removed" for result in results.values())
        self.removed += removed
        return removed


__all__ = [
    "DEFAULT_RETENTION_MS", "RETENTION_FIELD", "RetentionSweep", "expire_message", "expires_at", "recheck_at", "root_fields",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class RetentionView:
    """What retention keeps now: finished trees listed for removal, and when the next one is due (ms)."""

    waiting: int
    next_due_ms: int | None
    default_ms: int = DEFAULT_RETENTION_MS

    def to_json(self) -> dict[str, int | None]:
        """`platform status --json`'s form."""
        return {"finished_trees_kept": self.waiting, "next_removal_at_ms": self.next_due_ms, "default_retention_ms": self.default_ms}

    def describe(self, now_ms: int) -> str:
        """One line for people: `3 finished trees kept (retention 7d unless the deployment sets one); the next is removed in 2h`."""
        text = f"{self.waiting} finished tree{'' if self.waiting == 1 else 's'} kept (retention {_whole(self.default_ms)} unless the deployment sets one)"
        if self.next_due_ms is not None:
            left = self.next_due_ms - now_ms
            text += "; the next is due now" if left <= 0 else f"; the next is removed in {_whole(left, round_up=True)}"
        return text


def read_retention_view(client: Redis, shards: Shards | None = None) -> RetentionView:
    """How many finished trees wait in the expiry index (all shards), and the first one's due time."""
    shards = shards or sharding.load(client)
    with map_redis_errors():
        pipe = client.pipeline(transaction=False)
        for key in shards.every("expiry"):
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
        replies = pipe.execute()
    firsts = [int(first[0][1]) for first in replies[1::2] if first]
    return RetentionView(sum(int(count) for count in replies[0::2]), min(firsts) if firsts else None)


def _whole(ms: int, *, round_up: bool = False) -> str:
    """`7d`, `3h`, `12m`, `40s`: the largest unit it reaches."""
    for unit, scale in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= scale:
            return f"{-(-ms // scale) if round_up else ms // scale}{unit}"
    return f"{ms}ms"
