"""The keys that span execution trees, split N ways: queues, timers, the dirty, executions, active, expiry and tag indexes.

One key each would put all of that traffic on one master of a cluster. Each
kind is split into N shards instead; shard `s` of N carries a hash tag
chosen so that its slot falls in the `s`-th of N equal slot ranges, so with
N a multiple of the masters' count and slots shared evenly (as
`valkey-cli --cluster create` and ADDSLOTSRANGE by equal ranges do), every
master holds the same number of shards.

An execution's shard follows from its id (`Shards.of`: CRC-32 of the id,
modulo N), so whoever writes about an execution (its queue entry, timers,
index entries) and whoever removes those entries later land on the same
key without asking. The dirty and expiry indexes, which list trees, go by
the root's id. Readers read every shard: runners take from each shard's
queue streams, schedulers split the timer and dirty shards between them
(`mine`), listings merge the shards' sorted sets.

N is stored in Redis at first use (`dolmen:shards`) and fixed from then on,
since every key above depends on it. The default is 1 on one server and
two per master on a cluster; `DOLMEN_SHARDS` chooses another at first use.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import redis
import redis.asyncio
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ..config import env_int
from ..errors import ConfigError
from . import keys
from .connection import AsyncRedis, Redis, map_redis_errors, read_slots

# The count chosen at first use (see the module docstring).
COUNT_KEY = f"{keys.PREFIX}:shards"
MAX_SHARDS = 1024
# Store the proposed count unless one is there, and answer the stored one. Also when
# Valkey is over maxmemory (a few bytes, once): a full store must not keep processes from starting.
_SETTLE = "#!lua flags=allow-oom\nredis.call('SET', KEYS[1], ARGV[1], 'NX')\nreturn redis.call('GET', KEYS[1])"
# What `Shards.queue_ffqn` strips from a queue's key: `dolmen:{TAG}:q:FFQN`.
_QUEUE_MARK = "}:q:"


@functools.lru_cache(maxsize=8)
def _tags(count: int) -> tuple[str, ...]:
    """Hash tags, one per shard: tag `s` hashes into the `s`-th of `count` equal slot ranges."""
    tags: list[str] = []
    for shard in range(count):
        low = shard * REDIS_CLUSTER_HASH_SLOTS // count
        high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // count
        attempt = 0
        while True:
            tag = f"s{shard}.{attempt}" if count > 1 else "s0"
            if count == 1 or low <= key_slot(tag.encode()) < high:
                tags.append(tag)
                break
            attempt += 1
    return tuple(tags)


@dataclass(frozen=True, slots=True)
class Shards:
    """N shards of the cross-tree keys. Key names: `dolmen:{TAG}:timers`, `dolmen:{TAG}:q:FFQN`, ...

    Raises `ConfigError` for a count outside 1 to `MAX_SHARDS`.
    """

    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ConfigError(f"a shard count must be between 1 and {MAX_SHARDS}, not {self.count}")

    @property
    def tags(self) -> tuple[str, ...]:
        """The hash tag of each shard, in shard order (see the module docstring)."""
        return _tags(self.count)

    def of(self, execution_id: str) -> int:
        """The shard of an execution (or, given a root's id, of a tree): CRC-32 of the id modulo N."""
        if self.count == 1:
            return 0
        return zlib.crc32(execution_id.encode()) % self.count

    def key(self, shard: int, kind: str) -> str:
        """Shard `shard`'s key of `kind` (`timers`, `dirty`, `executions`, `active`, `expiry` or `tag:KEY=VALUE`)."""
        return f"{keys.PREFIX}:{{{self.tags[shard]}}}:{kind}"

    def every(self, kind: str) -> list[str]:
        """Every shard's key of `kind`, in shard order."""
        return [self.key(shard, kind) for shard in range(self.count)]

    # Where an execution's (or tree's) entries go.

    def timers(self, execution_id: str) -> str:
        """zset timer member (JSON) -> due ms; the member's `id` picks the shard."""
        return self.key(self.of(execution_id), "timers")

    def dirty(self, root: str) -> str:
        """zset dirty mark `ROOT|TOKEN` -> µs: trees whose outbox may hold undelivered messages."""
        return self.key(self.of(root), "dirty")

    def executions(self, execution_id: str) -> str:
        """zset id -> created ms: every execution."""
        return self.key(self.of(execution_id), "executions")

    def active(self, execution_id: str) -> str:
        """zset id -> created ms: executions not finished yet."""
        return self.key(self.of(execution_id), "active")

    def expiry(self, root: str) -> str:
        """zset root -> ms: finished roots, scored by when their tree's retention ends (store/retention.py)."""
        return self.key(self.of(root), "expiry")

    def tag(self, tag: str, execution_id: str) -> str:
        """zset id -> created ms: the executions that carry `tag` (`KEY=VALUE`, see platform/tags.py)."""
        return self.key(self.of(execution_id), tag_kind(tag))

    def queue(self, ffqn: str, execution_id: str) -> str:
        """The stream of `ffqn`'s queued executions in the execution's shard (entries `id EXECUTION_ID`)."""
        return self.queue_in(self.of(execution_id), ffqn)

    def queue_in(self, shard: int, ffqn: str) -> str:
        """Shard `shard`'s stream of `ffqn`. A shard's queues share its hash tag: one XREADGROUP reads them all."""
        return f"{keys.PREFIX}:{{{self.tags[shard]}}}:q:{ffqn}"

    def queues(self, ffqn: str) -> list[str]:
        """Every shard's stream of `ffqn`."""
        return [self.queue_in(shard, ffqn) for shard in range(self.count)]

    @staticmethod
    def queue_ffqn(stream: str) -> str:
        """The function whose queue `stream` (a key from `queue_in`) is."""
        return stream.partition(_QUEUE_MARK)[2]

    def mine(self, index: int, of: int) -> list[int]:
        """The shards that reader `index` of `of` readers takes (every `of`-th, from `index`)."""
        if of <= 1:
            return list(range(self.count))
        return [shard for shard in range(self.count) if shard % of == index % of]


def tag_kind(tag: str) -> str:
    """The kind of key (for `Shards.key` and `every`) of the index of `tag` (`KEY=VALUE`)."""
    return f"tag:{tag}"


def wanted_count() -> int:
    """`DOLMEN_SHARDS`, or 0 for the default."""
    return env_int("DOLMEN_SHARDS")


def default_count(masters: int) -> int:
    """Two shards per master on a cluster (so two schedulers or more split them evenly), one on one server."""
    return 1 if masters <= 1 else min(MAX_SHARDS, 2 * masters)


def load(client: Redis) -> Shards:
    """The store's shards: the count stored at its first use, proposed now if there is none yet (one round trip each).

    Raises `ConfigError` as `settled` does.
    """
    wanted = wanted_count()
    masters = len(client.get_primaries()) if isinstance(client, redis.RedisCluster) else 1
    proposed = wanted or default_count(masters)
    with map_redis_errors():
        stored: bytes | None = client.eval(_SETTLE, 1, COUNT_KEY, proposed)  # type: ignore[assignment]
    return settled(stored, proposed, wanted)


def read_count(client: Redis) -> int | None:
    """The stored shard count, or None before the store's first use (a read: it stores nothing)."""
    with map_redis_errors():
        stored: bytes | None = client.get(COUNT_KEY)  # type: ignore[assignment]
    return None if stored is None else int(stored)


async def load_async(client: AsyncRedis) -> Shards:
    """`load` on the asyncio client (raises as it does)."""
    wanted = wanted_count()
    masters = 1
    with map_redis_errors():
        if isinstance(client, redis.asyncio.RedisCluster):
            await read_slots(client)
            masters = len(client.get_primaries())
        proposed = wanted or default_count(masters)
        stored = await client.eval(_SETTLE, 1, COUNT_KEY, proposed)  # type: ignore[misc]
    return settled(stored, proposed, wanted)


def settled(stored: bytes | str | None, proposed: int, wanted: int) -> Shards:
    """The shards of a store whose count key holds `stored` after this process proposed `proposed` (SET NX).

    Raises `ConfigError` when `DOLMEN_SHARDS` asked for another count than the
    store already has: the count is fixed at first use.
    """
    count = int(stored) if stored is not None else proposed
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(
            f"this store holds an invalid shard count, {count} (key {COUNT_KEY}); if it holds no executions yet, delete "
            f"that key (DEL {COUNT_KEY}) and start again, with DOLMEN_SHARDS unset or from 1 to {MAX_SHARDS}"
        )
    if wanted and wanted != count:
        raise ConfigError(
            f"DOLMEN_SHARDS={wanted}, but this store was set up with {count} shards, and the count is fixed at its "
            f"first use (every queue, timer and index key depends on it); unset DOLMEN_SHARDS or set it to {count}"
        )
    return Shards(count)
