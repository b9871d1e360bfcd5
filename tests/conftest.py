"""Fixtures shared by all tests: a real Valkey server and a fresh data directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from tests.support.cluster import ValkeyClusterForTests
from tests.support.servers import ValkeyForTests, flush

if TYPE_CHECKING:
    from tests.support.shared import SharedPlatform

# Shared fixtures: guest components (echo_guest, ...) and platform processes (processes, client).
pytest_plugins = ["tests.support.guests", "tests.support.platform"]


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyForTests | ValkeyClusterForTests]:
    """One real Valkey for the session; tests that restart it use their own.

    With DOLMEN_TEST_CLUSTER=1, a Valkey Cluster of 3 masters and 3 replicas
    instead: the tests that use it then run on a cluster.
    """
    server: ValkeyForTests | ValkeyClusterForTests
    if os.environ.get("DOLMEN_TEST_CLUSTER", "") not in ("", "0"):
        server = ValkeyClusterForTests(tmp_path_factory.mktemp("valkey-cluster"))
    else:
        server = ValkeyForTests(tmp_path_factory.mktemp("valkey"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey: ValkeyForTests | ValkeyClusterForTests) -> Iterator[str]:
    """The session Valkey's URL, emptied before each test."""
    flush(valkey.url)
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


# A module that shares one platform between its tests (tests/support/shared.py) defines `shared`; these build on it.
@pytest.fixture
def shared_url(shared: SharedPlatform) -> Iterator[str]:
    """The shared platform's Valkey; what a test leaves unfinished is cancelled after it (a module may redefine this)."""
    # Imported here: at conftest import time it would import tests.support.platform before pytest rewrites its asserts.
    from tests.support.shared import settle_leftovers

    yield shared.url
    settle_leftovers(shared.url)


@pytest.fixture
def shared_client(shared_url: str) -> Iterator[Client]:
    """The client API against the shared platform's Valkey."""
    c = Client.connect(shared_url)
    yield c
    c.close()
