"""Queue entries left under an earlier version's keys (`dolmen:q:FFQN`) reach today's queues."""

from __future__ import annotations

import redis

from dolmen.platform.store import keys
from dolmen.platform.store.queue_moves import move_legacy_queues

ACT = "t:q/i@1.0.0.act"
WF = "t:q/i@1.0.0.wf"


def ids(client: redis.Redis, ffqn: str) -> list[str]:
    return [fields[b"id"].decode() for _, fields in client.xrange(keys.queue(ffqn))]  # type: ignore[union-attr]


def test_entries_of_the_old_keys_are_moved_in_order_and_the_old_keys_removed(client: redis.Redis) -> None:
    for i in range(2500):  # more than one batch
        client.xadd(f"{keys.LEGACY_QUEUE_PREFIX}{ACT}", {"id": f"E_A{i}"})
    client.xadd(f"{keys.LEGACY_QUEUE_PREFIX}{WF}", {"id": "E_W"})
    client.xadd(keys.queue(ACT), {"id": "E_NEW"})
    # A read, unacked entry of an old runner is moved too: the lock decides who runs it.
    client.xgroup_create(f"{keys.LEGACY_QUEUE_PREFIX}{WF}", keys.QUEUE_GROUP, id="0")
    client.xreadgroup(keys.QUEUE_GROUP, "old-runner", {f"{keys.LEGACY_QUEUE_PREFIX}{WF}": ">"})

    assert move_legacy_queues(client, batch=1000) == 2501

    assert ids(client, ACT) == ["E_NEW", *(f"E_A{i}" for i in range(2500))]
    assert ids(client, WF) == ["E_W"]
    assert list(client.scan_iter(match=f"{keys.LEGACY_QUEUE_PREFIX}*")) == []
    assert move_legacy_queues(client) == 0  # nothing left: a second scheduler start moves nothing


def test_other_keys_under_the_old_prefix_are_left_alone(client: redis.Redis) -> None:
    """Only streams are queues: a user's own key that happens to match stays."""
    client.set(f"{keys.LEGACY_QUEUE_PREFIX}not-a-queue", "mine")
    assert move_legacy_queues(client) == 0
    assert client.get(f"{keys.LEGACY_QUEUE_PREFIX}not-a-queue") == b"mine"
