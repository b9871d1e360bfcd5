"""Waiting for replicas (`ReplicaWait`): the batcher's round trips that write end with a barrier and WAIT.

On a real Valkey master with one replica: a write is answered once the
replica has it, a read-only round trip sends no WAIT, a write the replica
cannot confirm in time is answered by `ReplicaWaitError` but stays on the
master, and `confirm` covers what other connections wrote.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis
from redis.crc import key_slot

from dolmen.platform.errors import ConfigError, ReplicaWaitError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store.async_batch import AsyncBatcher
from dolmen.platform.store.async_creates import AsyncCreates
from dolmen.platform.store.async_links import ReplicaWait, barrier_key, confirmation, writes
from dolmen.platform.store.connection import connect_async
from dolmen.platform.store.creates import NewExecution
from tests.support.servers import ValkeyForTests, start_replica, wait_in_sync

T = TypeVar("T")
WAIT = ReplicaWait(1, 300)


# ------------------------------------------------------------------ pure parts


def test_the_replicas_answer_is_enough_or_names_the_shortfall() -> None:
    """WAIT's count meets the wait or the error says how many of how many confirmed, within how long."""
    assert confirmation(ReplicaWait(2, 500), "h:1", 1, 2) is None
    assert confirmation(ReplicaWait(2, 500), "h:1", 1, 3) is None
    short = confirmation(ReplicaWait(2, 500), "h:1", 1, 1)
    assert isinstance(short, ReplicaWaitError) and short.where == "h:1"
    assert short.shortfall == "only 1 of the 2 replicas asked for (--wait-replicas) confirmed it within 500 ms"
    assert "the master at h:1 ran this write" in short.message and "Sending it again is safe" in short.message
    refused = confirmation(ReplicaWait(1, 500), "h:1", redis.ResponseError("NOPERM"), 1)
    assert isinstance(refused, ReplicaWaitError) and "could not be asked to confirm it (NOPERM)" in refused.message


def test_reads_are_told_from_writes_and_anything_unknown_is_a_write() -> None:
    """Only the commands known to read skip the wait: a script call, or a command not listed, waits."""
    for read in [("GET", "k"), (b"HGETALL", b"k"), ("xrange", "k", "-", "+"), ("SCRIPT", "LOAD", "return 1")]:
        assert not writes(read), read
    for write in [("SET", "k", 1), ("EVALSHA", "abc", 1, "k"), ("ZREM", "z", "m"), ("SOMETHING-NEW", "k")]:
        assert writes(write), write


def test_a_barrier_key_lies_in_the_slot_it_is_asked_for() -> None:
    """So a barrier goes to the master of the writes it follows, whichever slot they are in."""
    assert all(key_slot(barrier_key(slot)) == slot for slot in range(16384))


def test_a_wait_that_could_block_forever_or_waits_for_no_replica_is_refused() -> None:
    """WAIT 0 would wait forever and hold every request behind it; the messages name the flag and its range."""
    with pytest.raises(ConfigError, match=r"--wait-timeout-ms must be 1 to 10000 ms, got 0"):
        ReplicaWait(1, 0)
    with pytest.raises(ConfigError, match=r"--wait-timeout-ms must be 1 to 10000 ms, got 10001"):
        ReplicaWait(1, 10_001)
    with pytest.raises(ConfigError, match=r"--wait-replicas must be at least 1"):
        ReplicaWait(0, 1000)


# --------------------------------------------------------- on a real replica


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ValkeyForTests, ValkeyForTests]]:
    base = tmp_path_factory.mktemp("replicated")
    master = ValkeyForTests(base / "master")
    master.start()
    # DEBUG SLEEP makes a replica that is connected but answers nothing for a while.
    replica = start_replica(master, base / "replica", enable_debug_command="yes")
    yield master, replica
    replica.stop()
    master.stop()


@pytest.fixture
def master(servers: tuple[ValkeyForTests, ValkeyForTests]) -> Iterator[ValkeyForTests]:
    """The master, emptied, with its replica in sync (started again after a test that stopped it)."""
    master, replica = servers
    if replica.server is None:
        replica.start()
    wait_in_sync(replica)
    plain = redis.Redis.from_url(master.url)
    plain.flushall()
    plain.close()
    yield master


@pytest.fixture
def replica(servers: tuple[ValkeyForTests, ValkeyForTests]) -> ValkeyForTests:
    return servers[1]


def run(url: str, test: Callable[[AsyncBatcher], Awaitable[T]], wait: ReplicaWait | None = WAIT) -> T:
    async def main() -> T:
        client = connect_async(url)
        batcher = AsyncBatcher(client, wait=wait)
        try:
            return await test(batcher)
        finally:
            await batcher.close()
            await client.aclose()

    return asyncio.run(main())


async def send(batcher: AsyncBatcher, *commands: tuple[Any, ...]) -> list[Any]:
    recorded = batcher.commands()
    for args in commands:
        recorded.execute_command(*args)
    return await batcher.execute(recorded)


def waits_done(url: str) -> int:
    """How many WAIT commands the server at `url` has run."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
    finally:
        client.close()


def test_a_write_is_answered_once_the_replica_has_it_and_a_read_waits_for_nothing(
    master: ValkeyForTests, replica: ValkeyForTests
) -> None:
    """The replica holds the write when its answer comes; a read-only round trip sends no WAIT."""
    on_replica = redis.Redis.from_url(replica.url)

    async def test(batcher: AsyncBatcher) -> tuple[list[Any], bytes | None, int, list[Any], int]:
        written = await send(batcher, ("SET", "k", "v"), ("GET", "k"))
        seen = on_replica.get("k")
        before = waits_done(master.url)
        read = await send(batcher, ("GET", "k"), ("HGETALL", "h"))
        return written, seen, before, read, waits_done(master.url)  # type: ignore[return-value]

    written, seen, before, read, after = run(master.url, test)
    on_replica.close()
    assert written == [b"OK", b"v"] and seen == b"v"
    assert read == [b"v", []] and after == before


def test_a_write_the_replica_cannot_confirm_is_answered_so_and_stays_on_the_master(
    master: ValkeyForTests, replica: ValkeyForTests
) -> None:
    """With the replica stopped: ReplicaWaitError after the timeout for the write, its reads answered as usual."""
    replica.stop()

    async def test(batcher: AsyncBatcher) -> tuple[list[Any], float, list[Any], float]:
        start = time.monotonic()
        written = await send(batcher, ("SET", "k", "v"), ("GET", "k"))
        took = time.monotonic() - start
        start = time.monotonic()
        read = await send(batcher, ("GET", "k"))
        return written, took, read, time.monotonic() - start

    written, took, read, read_took = run(master.url, test)
    assert isinstance(written[0], ReplicaWaitError) and written[1] == b"v"  # the GET is not a write: its reply stays
    assert "only 0 of the 1 replica asked for (--wait-replicas) confirmed it within 300 ms" in written[0].message
    assert 0.3 <= took < 2 and read == [b"v"] and read_took < 0.2


def test_a_create_left_unconfirmed_is_confirmed_when_sent_again(
    master: ValkeyForTests, replica: ValkeyForTests
) -> None:
    """The first create runs but cannot be confirmed; once the replica is back, the same create answers as a repeat."""
    new = NewExecution(
        id=ExecutionId.new().value, ffqn="t:p/i@1.0.0.act", kind="activity", digest="sha256:x", params=[1],
        revision=1, component="c",
    )  # fmt: skip
    replica.stop()

    async def first(batcher: AsyncBatcher) -> BaseException | None:
        try:
            await AsyncCreates(batcher).create(new)
        except ReplicaWaitError as exc:
            return exc
        return None

    assert isinstance(run(master.url, first), ReplicaWaitError)
    replica.start()
    wait_in_sync(replica)

    async def again(batcher: AsyncBatcher) -> bool:
        return (await AsyncCreates(batcher).create(new)).created

    assert run(master.url, again) is False


def test_confirm_covers_what_other_connections_wrote(master: ValkeyForTests, replica: ValkeyForTests) -> None:
    """A WAIT alone counts only its connection's writes; `confirm`'s barrier makes it wait for everyone's."""
    other = redis.Redis.from_url(master.url)
    sleeper = redis.Redis.from_url(replica.url)
    other.set("by-another-connection", 1)
    assert run(master.url, lambda batcher: batcher.confirm()) is None
    # A replica that is connected but answers nothing (it sleeps) cannot confirm the next write.
    asleep = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", "0.5"))
    asleep.start()
    try:
        time.sleep(0.05)
        other.set("by-another-connection", 2)
        fresh = redis.Redis.from_url(master.url)
        assert fresh.execute_command("WAIT", 1, 100) == 1  # nothing of its own to wait for: it counts the replica
        fresh.close()
        with pytest.raises(ReplicaWaitError, match=r"only 0 of the 1 replica asked for"):
            run(master.url, lambda batcher: batcher.confirm(), ReplicaWait(1, 200))
    finally:
        asleep.join()
        other.close()
        sleeper.close()


def test_without_a_wait_nothing_is_waited_for(master: ValkeyForTests, replica: ValkeyForTests) -> None:
    """The default: no barrier, no WAIT, `confirm` returns at once, even with the replica gone."""
    replica.stop()
    before = waits_done(master.url)

    async def test(batcher: AsyncBatcher) -> list[Any]:
        await batcher.confirm()
        return await send(batcher, ("SET", "k", "v"))

    assert run(master.url, test, wait=None) == [b"OK"] and waits_done(master.url) == before
