"""After a failover: list again what a master lost while the trees it indexed went on.

On a cluster an execution tree and its entries in the shards (queue, timers,
the executions, active and expiry indexes) usually live on different
masters. Replication is asynchronous, so a master that dies can take with
it writes its replica never had, and its replica then serves an older
past while the other masters keep theirs. Two kinds of damage follow, both
seen in tests/cluster/test_lost_writes.py:

- a shard went back: an execution's index entry (and queue entry) written
  after its creation is gone, so nothing ever looks at it again;
- a tree went back: an execution that had finished (and whose finish
  removed its active-index entry, on another master) runs again by its
  state, on a lease nobody holds, and nothing looks at it either.

The repair sweep (store/repair.py) requeues whatever it finds in the active
index; what it cannot do is find an execution the index no longer lists.
So, whenever the cluster's masters change (a promotion, a restart: any new
`run_id` among the masters, see `masters`), `Reconciler` walks every
master's keys with SCAN and puts back, with ZADD NX, the index entries of
every execution whose state says it should have them: the `active`,
`executions` and tag entries of every unfinished execution, the `expiry`
entry of every finished root. The repair sweep does the rest. A pass is also made
when a scheduler first starts against a cluster whose masters it has not
seen reconciled (`dolmen:reconciled` keeps the last fingerprint passed).

One server (with or without replicas) needs none of this: a replica there
has a prefix of one master's writes, in order, so nothing goes back alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog

from ..tags import members as tag_members
from . import keys
from .connection import Redis, map_redis_errors
from .retention import expires_at
from .shards import Shards

log = structlog.get_logger("dolmen.reconcile")

# The fingerprint of the masters of the last complete pass.
RECONCILED_KEY = f"{keys.PREFIX}:reconciled"
# Every execution's state hash: `dolmen:{ROOT}:ID:state` (keys.state).
_STATE_PATTERN = f"{keys.PREFIX}:{{*}}:*:state"
_SUFFIX = ":state"
_FIELDS = ("status", "created_at", "parent", "finished_at", "retention_ms", "tags")


@dataclass(frozen=True, slots=True)
class Found:
    """What a pass reads of one execution's state."""

    execution_id: str
    status: str
    created_at: int
    parent: str
    finished_at: int
    retention_ms: str
    tags: dict[str, str] = field(default_factory=lambda: {})


def entries(found: Found, now_ms: int, shards: Shards) -> list[tuple[str, int, str]]:
    """The index entries (key, score, member) that `found`'s state says must exist. Pure.

    Unfinished: listed in `executions`, `active` and its tags' indexes, by
    creation time (as outbox.index_msg lists them). A finished root: in `expiry` by when its
    retention ends, unless that has passed (the retention sweep may be
    removing the tree this very moment: an entry put back then would
    outlive it). A finished child needs nothing: its tree goes with its root.
    """
    execution_id = found.execution_id
    if found.status == "finished":
        if found.parent or found.finished_at == 0:
            return []
        due = expires_at(found.finished_at, {"retention_ms": found.retention_ms} if found.retention_ms else {})
        return [(shards.expiry(execution_id), due, execution_id)] if due > now_ms else []
    if not found.status:
        return []
    return [
        (shards.executions(execution_id), found.created_at, execution_id),
        (shards.active(execution_id), found.created_at, execution_id),
        *((shards.tag(tag, execution_id), found.created_at, execution_id) for tag in tag_members(found.tags)),
    ]


def fingerprint(run_ids: Mapping[str, str]) -> str:
    """The masters as one string: `address=run_id` pairs, sorted. Pure."""
    return ",".join(f"{address}={run_id}" for address, run_id in sorted(run_ids.items()))


@dataclass
class Reconciler:
    """Puts index entries back after a failover, one SCAN batch per `step()` (see the module docstring)."""

    client: Redis
    shards: Shards
    batch: int = 1000
    restored: int = 0
    # The pass under way: the masters' fingerprint it started from, and each master's SCAN cursor.
    _passing: str | None = None
    _cursors: dict[str, int] = field(default_factory=lambda: {})

    @property
    def active(self) -> bool:
        """Whether a pass is under way (the scheduler then steps at every tick)."""
        return self._passing is not None

    def check(self) -> bool:
        """Start a pass when the masters differ from those of the last complete one; whether one is under way."""
        if not isinstance(self.client, redis.RedisCluster):
            return False
        with map_redis_errors():
            now = self._masters()
            if now == self._passing:
                return True
            done: Any = self.client.get(RECONCILED_KEY)
        if isinstance(done, bytes) and done.decode() == now:
            self._passing = None
            return False
        if done is None:
            log.info("first start against this cluster: scanning its masters once for unlisted executions", masters=now)
        else:
            log.warning("the cluster's masters changed: looking for executions a failover left unlisted", masters=now)
        self._passing = now
        self._cursors = {node.name: 0 for node in self.client.get_primaries()}
        return True

    def step(self, now_ms: int) -> int:
        """Scan the next batch of one master's keys and put back what is missing; how many entries were put back."""
        if self._passing is None or not isinstance(self.client, redis.RedisCluster):
            return 0
        if not self._cursors:
            with map_redis_errors():
                self.client.set(RECONCILED_KEY, self._passing)
            log.info("every master scanned after the change of masters", restored=self.restored)
            self._passing = None
            return 0
        name, cursor = next(iter(self._cursors.items()))
        node = self.client.get_node(node_name=name)
        if node is None:  # gone from the slot map: the masters changed again
            self._passing = None
            return 0
        with map_redis_errors():
            reply: Any = self.client.execute_command(
                "SCAN", cursor, "MATCH", _STATE_PATTERN, "COUNT", self.batch, "TYPE", "hash", target_nodes=node
            )
            cursors, names = reply
            following = int(next(iter(cursors.values()))) if isinstance(cursors, dict) else int(cursors)
            if following == 0:
                del self._cursors[name]
            else:
                self._cursors[name] = following
            restored = self._restore([raw.decode() for raw in names], now_ms)
        self.restored += restored
        return restored

    def _restore(self, state_keys: list[str], now_ms: int) -> int:
        if not state_keys:
            return 0
        read = self.client.pipeline(transaction=False)
        for key in state_keys:
            read.hmget(key, *_FIELDS)
        found = [_found(key, values) for key, values in zip(state_keys, read.execute())]
        wanted = [entry for item in found if item is not None for entry in entries(item, now_ms, self.shards)]
        if not wanted:
            return 0
        write = self.client.pipeline(transaction=False)
        for key, score, member in wanted:
            write.zadd(key, {member: score}, nx=True)
        added = sum(int(n) for n in write.execute())
        if added:
            log.warning("listed again executions a failover had left unlisted", entries=added)
        return added

    def _masters(self) -> str:
        assert isinstance(self.client, redis.RedisCluster)
        refresh = getattr(self.client, "refresh_slots", None)  # connection._Cluster: the slot map as it is now
        if refresh is not None:
            refresh()
        run_ids: dict[str, str] = {}
        for node in self.client.get_primaries():
            info: Any = self.client.execute_command("INFO", "server", target_nodes=node)
            run_ids[node.name] = str(info.get("run_id", "") if isinstance(info, dict) else info)
        return fingerprint(run_ids)


def _found(key: str, values: list[bytes | None]) -> Found | None:
    if values[0] is None or not key.endswith(_SUFFIX):
        return None
    text = [v.decode() if v is not None else "" for v in values]
    execution_id = key[: -len(_SUFFIX)].rsplit(":", 1)[-1]
    return Found(
        execution_id=execution_id,
        status=text[0],
        created_at=int(text[1] or 0),
        parent=text[2],
        finished_at=int(text[3] or 0),
        retention_ms=text[4],
        tags=json.loads(text[5]) if text[5] else {},
    )
