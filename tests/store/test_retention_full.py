"""Retention when Valkey is full (maxmemory, noeviction): removing finished trees is what frees it, so it is never refused."""

from __future__ import annotations


import pytest
import redis

from dolmen.platform.store import keys
from dolmen.platform.store.purge import PurgeFilter, purge_trees
from dolmen.platform.store.retention import RetentionSweep
from dolmen.platform.store.scripts import Scripts
from tests.store.test_retention import build, tree_keys
from tests.support.memory import Filler, refuses_writes
from tests.support import indexes


@pytest.fixture
def client(full_client: redis.Redis) -> redis.Redis:
    """The tests of this module run on a Valkey with maxmemory of their own."""
    return full_client


def test_the_sweep_and_purge_remove_trees_when_valkey_is_full(client: redis.Redis) -> None:
    """Over maxmemory, an expired tree is still removed whole, with its index entries and idempotency key, and purge works too."""
    expired = build(client, retention_ms=1000, key="full-expired")
    other = build(client, retention_ms=3_600_000, key="full-other")
    finished_at = int(client.hget(keys.state(expired.root), "finished_at"))  # type: ignore[arg-type]
    scripts = Scripts(client)
    Filler(client).fill()
    assert RetentionSweep(scripts).step(finished_at + 1000) == 1
    assert tree_keys(client, expired.root) == [] and client.get(keys.idempotency("full-expired")) is None
    assert all(indexes.zscore(client, "executions", i) is None for i in expired.ids)
    assert [t.execution_id for t in purge_trees(scripts, PurgeFilter(finished_at + 10_000)).purged] == [other.root]
    assert tree_keys(client, other.root) == [] and indexes.zcard(client, "expiry") == 0
    assert refuses_writes(client), "the test meant Valkey to be full throughout"
