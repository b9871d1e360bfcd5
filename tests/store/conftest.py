"""Fixtures of the store tests: a synchronous Redis client of the test Valkey."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from dolmen.platform.store.connection import connect
# The Valkey with maxmemory of test_store_full and test_retention_full: fixtures are found by name.
from tests.support.memory import full_client, full_valkey  # noqa: F401


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test Valkey (bytes replies), closed after the test."""
    c = connect(redis_url)
    yield c
    c.close()
