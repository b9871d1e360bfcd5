"""Fixtures shared by all tests: a real Valkey server and a fresh data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.servers import ValkeyForTests

# Shared fixtures: guest components (echo_guest, ...) and platform processes (processes, client).
pytest_plugins = ["tests.support.guests", "tests.support.platform"]


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyForTests]:
    """One real Valkey for the session; tests that restart it use their own."""
    server = ValkeyForTests(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey: ValkeyForTests) -> Iterator[str]:
    """The session Valkey's URL, emptied before each test."""
    client = redis.Redis.from_url(valkey.url)
    client.flushall()
    client.close()
    yield valkey.url


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[ValkeyForTests]:
    """A Valkey of this test's own, for tests that stop, kill or restart it."""
    server = ValkeyForTests(tmp_path / "valkey")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh Dolmen data directory."""
    path = tmp_path / "dolmen-data"
    path.mkdir()
    return path
