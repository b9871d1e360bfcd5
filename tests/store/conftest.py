"""Fixtures of the store tests: a synchronous Redis client of the test Valkey."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from dolmen.platform.store.connection import connect
from dolmen.platform.store.scripts import Scripts
# The Valkey with maxmemory of test_store_full and test_retention_full: fixtures are found by name.
from tests.support.memory import full_client, full_valkey  # noqa: F401


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test Valkey (bytes replies), closed after the test."""
    c = connect(redis_url)
    yield c
    c.close()


@pytest.fixture
def three_shard_scripts(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Scripts:
    """The store's scripts on 3 shards (`DOLMEN_SHARDS=3`): indexes and queues spread over several keys."""
    monkeypatch.setenv("DOLMEN_SHARDS", "3")
    scripts = Scripts(client)
    assert scripts.shards.count == 3
    return scripts
