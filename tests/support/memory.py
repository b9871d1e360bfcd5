"""A Valkey that is full: filler keys written until it refuses one for memory, removed to make room again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import OutOfMemoryError

from dolmen.platform.store.connection import connect
from dolmen.platform.store import shards as sharding

from tests.support.polling import wait_for
from tests.support.servers import ValkeyForTests

MIB = 1024**2
FILLER = "filler:"
# What a test Valkey starts with: room for a deployment (component bytes live in Valkey) and
# the executions of a test; `Filler.fill` then sets the limit just above what is stored.
START_MAXMEMORY = "512mb"


def valkey_with_maxmemory(data_dir: Path) -> ValkeyForTests:
    """A Valkey of its own with maxmemory and noeviction, as `platform up` runs it (not started)."""
    return ValkeyForTests(data_dir, maxmemory=START_MAXMEMORY, maxmemory_policy="noeviction")


@pytest.fixture(scope="module")
def full_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyForTests]:
    """A Valkey of the test module's own, with maxmemory and noeviction as `platform up` runs it (tests/store/conftest.py imports it)."""
    server = valkey_with_maxmemory(tmp_path_factory.mktemp("valkey-maxmemory"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def full_client(full_valkey: ValkeyForTests) -> Iterator[redis.Redis]:
    """A client of that Valkey, emptied and with room before each test."""
    c = connect(full_valkey.url)
    c.config_set("maxmemory", START_MAXMEMORY)
    c.flushall()
    sharding.load(c)  # the shard count, stored as by any process at its start (a full store refuses it)
    yield c
    c.close()


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])  # type: ignore[index]


def refuses_writes(client: redis.Redis) -> bool:
    """Whether Valkey refuses a small write for memory right now."""
    try:
        client.set(f"{FILLER}probe", "x")
    except OutOfMemoryError:
        return True
    client.delete(f"{FILLER}probe")
    return False


class Filler:
    """Fills a Valkey with filler keys until it is full, and frees it again."""

    def __init__(self, client: redis.Redis, *, chunk: int = 16 * 1024) -> None:
        self.client = client
        self.chunk = chunk
        self.written = 0
        self._limit = 0

    def fill(self, headroom: int = 4 * MIB) -> int:
        """Set maxmemory `headroom` above the use now, then write filler keys until Valkey refuses one.

        Then maxmemory is pinned a little under the use: right at the limit
        the use moves by a few KiB (buffers), which would let a small write
        through now and then. Returns how many filler keys were written.
        """
        self._limit = used_memory(self.client) + headroom
        self.client.config_set("maxmemory", self._limit)
        value = "x" * self.chunk
        try:
            while True:
                self.client.set(f"{FILLER}{self.written}", value)
                self.written += 1
        except OutOfMemoryError:
            pass
        self.client.config_set("maxmemory", min(self._limit, used_memory(self.client)) - 256 * 1024)
        assert refuses_writes(self.client)
        return self.written

    def free(self) -> None:
        """Delete the filler keys and give back the limit `fill` set: the store has room again."""
        names = [f"{FILLER}{i}" for i in range(self.written)]
        for start in range(0, len(names), 500):
            self.client.delete(*names[start : start + 500])
        self.written = 0
        self.client.config_set("maxmemory", self._limit)
        wait_for(lambda: not refuses_writes(self.client), timeout=10, what="Valkey to have room again")
