"""Entries left under an earlier version's keys (one queue stream per function, one sorted set per index) reach today's shards."""

from __future__ import annotations

import json

import redis

from dolmen.platform.store import keys
from dolmen.platform.store.layout_moves import LEGACY_INDEXES, LEGACY_QUEUE_PREFIXES, move_legacy_keys
from dolmen.platform.store.shards import Shards
from tests.support import indexes

ACT = "t:q/i@1.0.0.act"
WF = "t:q/i@1.0.0.wf"
OLDEST, LATER = LEGACY_QUEUE_PREFIXES


def test_queue_entries_of_the_old_keys_are_moved_in_order_and_the_old_keys_removed(client: redis.Redis) -> None:
    shards = indexes.shards_of(client)
    for i in range(2500):  # more than one batch
        client.xadd(f"{OLDEST}{ACT}", {"id": f"E_A{i}"})
    client.xadd(f"{LATER}{WF}", {"id": "E_W"})
    client.xadd(shards.queue(ACT, "E_NEW"), {"id": "E_NEW"})
    # A read, unacked entry of an old runner is moved too: the lock decides who runs it.
    client.xgroup_create(f"{LATER}{WF}", keys.QUEUE_GROUP, id="0")
    client.xreadgroup(keys.QUEUE_GROUP, "old-runner", {f"{LATER}{WF}": ">"})

    assert move_legacy_keys(client, shards, batch=1000) == 2501

    assert set(indexes.queued(client, ACT)) == {"E_NEW", *(f"E_A{i}" for i in range(2500))}
    for shard in range(shards.count):  # in order within each shard
        moved = [fields[b"id"].decode() for _, fields in client.xrange(shards.queue_in(shard, ACT))]
        assert moved == sorted(moved, key=lambda e: -1 if e == "E_NEW" else int(e[3:]))
    assert indexes.queued(client, WF) == ["E_W"]
    assert all(list(client.scan_iter(match=f"{prefix}*")) == [] for prefix in LEGACY_QUEUE_PREFIXES)
    assert move_legacy_keys(client, shards) == 0  # nothing left: a second scheduler start moves nothing


def test_timers_and_indexes_of_the_old_keys_go_to_their_shards_with_their_scores(client: redis.Redis) -> None:
    shards = Shards(4)  # as a store created with DOLMEN_SHARDS=4 would have them
    timer = json.dumps({"op": "enqueue", "ffqn": ACT, "id": "E_T.1"}, sort_keys=True)
    client.zadd(LEGACY_INDEXES["timers"][0], {timer: 5000})
    client.zadd(LEGACY_INDEXES["dirty"][0], {"E_D|tok": 7, "E_OLD": 8})
    client.zadd(LEGACY_INDEXES["executions"][0], {f"E_{i}": i for i in range(1500)})
    client.zadd(LEGACY_INDEXES["active"][0], {"E_1": 1})
    client.zadd(LEGACY_INDEXES["expiry"][0], {"E_2": 99})

    assert move_legacy_keys(client, shards, batch=500) == 1 + 2 + 1500 + 1 + 1

    assert client.zscore(shards.timers("E_T.1"), timer) == 5000
    assert client.zscore(shards.dirty("E_D"), "E_D|tok") == 7 and client.zscore(shards.dirty("E_OLD"), "E_OLD") == 8
    assert all(client.zscore(shards.executions(f"E_{i}"), f"E_{i}") == i for i in range(1500))
    assert sum(client.zcard(key) for key in shards.every("executions")) == 1500
    assert client.zscore(shards.active("E_1"), "E_1") == 1 and client.zscore(shards.expiry("E_2"), "E_2") == 99
    assert not any(client.exists(old) for old, _ in LEGACY_INDEXES.values())


def test_other_keys_under_the_old_names_are_left_alone(client: redis.Redis) -> None:
    """Only streams are queues, only sorted sets indexes: a user's own key that happens to match stays."""
    client.set(f"{OLDEST}not-a-queue", "mine")
    client.set(LEGACY_INDEXES["timers"][0], "mine too")
    assert move_legacy_keys(client, indexes.shards_of(client)) == 0
    assert client.get(f"{OLDEST}not-a-queue") == b"mine" and client.get(LEGACY_INDEXES["timers"][0]) == b"mine too"
