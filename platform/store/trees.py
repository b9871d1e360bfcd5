"""Execution trees as a whole: find every key of one, and remove a finished one.

A tree is a root execution and all its descendants; their keys share the
root's hash tag (`dolmen:{E_...}:...`). A tree is found without scanning the
keyspace: each execution's log names the children it created
(`child_submitted`), so a walk from the root reads one level per round trip,
for many trees at once. (A scheduled execution is not a child: it is a tree
of its own.)

Removal is one script per tree (lua/remove_tree.lua) that touches only the
tree's slot and refuses unless every execution the walk found is finished
and the tree's outbox is empty. Only an unfinished workflow creates
children, so a finished tree cannot have grown behind the walk's back. The
global indexes (executions, active, tags, expiry, dirty) and the root's
idempotency key are cleaned afterwards, idempotently, from a tombstone the
script leaves in the tree's slot: a process that dies in between leaves work
that the retention sweep or `purge` finishes when it meets the root again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


from ..tags import members as tag_members
from . import keys
from .records import CHILD_SUBMITTED, Outcome
from .scripts import Scripts
from .shards import Shards, tag_kind
from .connection import Redis

# A root's state field holding the idempotency key bound to it (removed with its tree).
IDEMPOTENCY_FIELD = "idem"
# How long a tombstone outlives a removal whose index cleaning was interrupted.
TOMBSTONE_TTL_S = 30 * 86400

_FIELDS = ("status", "ffqn", "finished_at", "outcome", IDEMPOTENCY_FIELD, "tags")
_CHILD_SUBMITTED = CHILD_SUBMITTED.encode()


@dataclass(frozen=True, slots=True)
class Member:
    """One execution of a tree as the walk read it: its status (None: no state) and log length."""

    id: str
    status: str | None
    log_length: int
    # Its tags as `KEY=VALUE` (the indexes it is listed in besides `executions` and `active`).
    tags: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """Finished, or without a state (nothing of it runs)."""
        return self.status in (None, "finished")


@dataclass(frozen=True, slots=True)
class Tree:
    """A tree as read: its executions (the root first; none when the root is gone) and its root's fields.

    The walk stops below an unfinished execution, so `members` of an
    unfinished tree may be incomplete; it is then not removed anyway.
    """

    root: str
    members: tuple[Member, ...] = ()
    ffqn: str = ""
    finished_at: int = 0
    outcome: Outcome | None = None
    idempotency_key: str | None = None

    @property
    def exists(self) -> bool:
        """Whether the root's state was found."""
        return bool(self.members)

    @property
    def unfinished(self) -> list[str]:
        """The ids of the members not finished yet, in walk order."""
        return [m.id for m in self.members if not m.finished]


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What the global indexes may still list of a removed tree."""

    root: str
    members: tuple[str, ...]
    idempotency_key: str | None = None
    # Every tag (`KEY=VALUE`) one of `members` carries: the tag indexes to remove them from.
    tags: tuple[str, ...] = ()

    def to_json(self) -> str:
        """The tombstone as stored: a JSON object `{"members", "idem", "tags"}`."""
        return json.dumps({"members": list(self.members), "idem": self.idempotency_key, "tags": list(self.tags)})

    @classmethod
    def from_json(cls, root: str, raw: bytes | str | None) -> Tombstone:
        """A tombstone read back; with nothing read, one for the root alone."""
        if not raw:
            return cls(root, (root,))
        data = json.loads(raw)
        return cls(root, tuple(data.get("members") or (root,)), data.get("idem"), tuple(data.get("tags") or ()))


def read_trees(client: Redis, roots: Iterable[str]) -> list[Tree]:
    """Walk each root's tree, level by level (one round trip per level for all of them); one `Tree` per root, in order.

    Raises redis-py's exceptions: callers translate them (`map_redis_errors`).
    """
    roots = list(dict.fromkeys(roots))
    members: dict[str, list[Member]] = {root: [] for root in roots}
    heads: dict[str, list[str | None]] = {}
    stopped: set[str] = set()
    frontier = [(root, root) for root in roots]
    while frontier:
        pipe = client.pipeline(transaction=False)
        for _, execution_id in frontier:
            pipe.hmget(keys.state(execution_id), *_FIELDS)
            pipe.xrange(keys.log(execution_id))
        replies: list[Any] = pipe.execute()
        below: list[tuple[str, str]] = []
        for i, (root, execution_id) in enumerate(frontier):
            fields = [None if v is None else v.decode() for v in replies[2 * i]]
            entries: list[tuple[bytes, dict[bytes, bytes]]] = replies[2 * i + 1]
            if execution_id == root:
                if fields[0] is None:
                    continue  # the root is gone: nothing to walk
                heads[root] = fields
            member = Member(execution_id, fields[0], len(entries), _tag_members(fields[5]))
            members[root].append(member)
            if not member.finished:
                stopped.add(root)  # kept anyway: what lies below does not matter
                continue
            for _, data in entries:
                if data.get(b"t") == _CHILD_SUBMITTED:
                    child = json.loads(data[b"d"]).get("child_id")
                    if isinstance(child, str) and keys.root_of(child) == root:
                        below.append((root, child))
        frontier = [(root, child) for root, child in below if root not in stopped]
    return [_tree(root, members[root], heads.get(root)) for root in roots]


def _tree(root: str, found: list[Member], head: list[str | None] | None) -> Tree:
    if head is None:
        return Tree(root)
    _, ffqn, finished_at, outcome, idem, _ = head
    return Tree(
        root,
        tuple(found),
        ffqn=ffqn or "",
        finished_at=int(finished_at or 0),
        outcome=Outcome.from_json(json.loads(outcome)) if outcome else None,
        idempotency_key=idem or None,
    )


def remove_trees(scripts: Scripts, trees: list[Tree]) -> dict[str, str]:
    """Remove finished trees, one script each, then clean the indexes of those removed.

    Returns per root 'removed', or why not: 'missing', 'unfinished', 'changed'
    (read again and retry) or 'outbox' (messages still to deliver).
    """
    results = {tree.root: "missing" for tree in trees if not tree.exists}
    trees = [tree for tree in trees if tree.exists]
    if not trees:
        return results
    pipe = scripts.pipeline()
    positions: dict[str, int] = {}
    tombstones: dict[str, Tombstone] = {}
    for tree in trees:
        tags = tuple(sorted({tag for m in tree.members for tag in m.tags}))
        tomb = Tombstone(tree.root, tuple(m.id for m in tree.members), tree.idempotency_key, tags)
        script_keys = [keys.outbox(tree.root), keys.purged(tree.root)]
        for member in tree.members:
            script_keys += [keys.state(member.id), keys.log(member.id), keys.done(member.id)]
        args = [tomb.to_json(), TOMBSTONE_TTL_S, *(m.log_length for m in tree.members)]
        positions[tree.root] = pipe.script("remove_tree", script_keys, args)
        tombstones[tree.root] = tomb
    replies = pipe.execute()
    results.update({root: replies[p][0].decode() for root, p in positions.items()})
    clean(scripts, [tombstones[root] for root, result in results.items() if result == "removed"])
    return results


def clean(scripts: Scripts, tombstones: list[Tombstone]) -> None:
    """Remove removed trees from the global indexes, unbind their idempotency keys, drop the tombstones.

    Idempotent: run again after an interruption, it changes nothing more.
    """
    if not tombstones:
        return
    pipe = scripts.pipeline()
    shards = scripts.shards
    for tomb in tombstones:
        for shard, members in _by_shard(shards, tomb.members).items():
            pipe.zrem(shards.key(shard, "executions"), *members)
            pipe.zrem(shards.key(shard, "active"), *members)
            for tag in tomb.tags:
                pipe.zrem(shards.key(shard, tag_kind(tag)), *members)
        if tomb.idempotency_key:
            # Only while the key still names this tree: it may since have expired and been claimed anew.
            pipe.script("del_if_equal", [keys.idempotency(tomb.idempotency_key)], [tomb.root])
        pipe.zrem(shards.expiry(tomb.root), tomb.root)
        pipe.zrem(shards.dirty(tomb.root), tomb.root)  # a bare root: a mark of an earlier version
        pipe.delete(keys.purged(tomb.root))
    pipe.execute()


def _tag_members(raw: str | None) -> tuple[str, ...]:
    """A state's `tags` field as `KEY=VALUE` strings."""
    return tuple(tag_members(json.loads(raw))) if raw else ()


def _by_shard(shards: Shards, ids: Iterable[str]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for execution_id in ids:
        grouped.setdefault(shards.of(execution_id), []).append(execution_id)
    return grouped


def clean_gone(scripts: Scripts, roots: list[str]) -> None:
    """Finish the removal of trees whose root is gone, from their tombstones (or for the root alone)."""
    if not roots:
        return
    pipe = scripts.client.pipeline(transaction=False)
    for root in roots:
        pipe.get(keys.purged(root))
    raws: list[Any] = pipe.execute()
    clean(scripts, [Tombstone.from_json(root, raw) for root, raw in zip(roots, raws)])
