"""Reading and writing the sharded cross-tree keys in tests (store/shards.py), whatever the shard count.

The suites run on one server (one shard by default) and on a cluster (two
per master): tests look at queues, timers and indexes through these, never
through one key.
"""

from __future__ import annotations

import json
from typing import Any

from dolmen.platform.store import shards as sharding
from dolmen.platform.store.shards import Shards


def shards_of(client: Any) -> Shards:
    return sharding.load(client)


def _member_id(kind: str, member: str) -> str:
    """What picks a member's shard: a timer's `id`, a dirty mark's root, else the member itself."""
    if kind == "timers":
        return str(json.loads(member)["id"])
    if kind == "dirty":
        return member.partition("|")[0]
    return member


def key_of(client: Any, kind: str, member: str | bytes) -> str:
    text = member.decode() if isinstance(member, bytes) else member
    shards = shards_of(client)
    return shards.key(shards.of(_member_id(kind, text)), kind)


def zcard(client: Any, kind: str) -> int:
    return sum(int(client.zcard(key)) for key in shards_of(client).every(kind))


def zscore(client: Any, kind: str, member: str) -> float | None:
    return client.zscore(key_of(client, kind, member), member)


def zmscore(client: Any, kind: str, members: list[str]) -> list[float | None]:
    return [zscore(client, kind, member) for member in members]


def zmembers(client: Any, kind: str, *, withscores: bool = False) -> list[Any]:
    """Every shard's members, by score (then member), as one sorted set would list them."""
    rows = [row for key in shards_of(client).every(kind) for row in client.zrange(key, 0, -1, withscores=True)]
    rows.sort(key=lambda row: (row[1], row[0]))
    return rows if withscores else [member for member, _ in rows]


def zadd(client: Any, kind: str, mapping: dict[str, float]) -> None:
    for member, score in mapping.items():
        client.zadd(key_of(client, kind, member), {member: score})


def delete(client: Any, kind: str) -> None:
    for key in shards_of(client).every(kind):
        client.delete(key)


def queue_entries(client: Any, ffqn: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every shard's entries of `ffqn`'s queue, by entry id (the order they were added in, across shards)."""
    rows = [row for key in shards_of(client).queues(ffqn) for row in client.xrange(key)]
    rows.sort(key=lambda row: tuple(int(part) for part in row[0].split(b"-")))
    return rows


def queued(client: Any, ffqn: str) -> list[str]:
    """The execution ids in `ffqn`'s queue, in the order they were added."""
    return [fields[b"id"].decode() for _, fields in queue_entries(client, ffqn)]


def queue_len(client: Any, ffqn: str) -> int:
    return sum(int(client.xlen(key)) for key in shards_of(client).queues(ffqn))


def queue_exists(client: Any, ffqn: str) -> int:
    return sum(int(client.exists(key)) for key in shards_of(client).queues(ffqn))


def delete_queues(client: Any, *ffqns: str) -> None:
    for ffqn in ffqns:
        for key in shards_of(client).queues(ffqn):
            client.delete(key)


def queue_key(client: Any, ffqn: str, execution_id: str) -> str:
    return shards_of(client).queue(ffqn, execution_id)
