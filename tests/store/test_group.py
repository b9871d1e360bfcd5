"""Group commit: concurrent writes share pipelines and each gets its own reply or error."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from dolmen.platform.errors import StoreError
from dolmen.platform.store.connection import connect
from dolmen.platform.store.group import GroupCommit
from dolmen.platform.store.scripts import Scripts

Groups = Callable[[redis.Redis], GroupCommit]


@pytest.fixture
def groups() -> Iterator[Groups]:
    """Makes a `GroupCommit` on a client; closes both (the group holds a connection) after the test."""
    made: list[tuple[GroupCommit, redis.Redis]] = []

    def make(client: redis.Redis) -> GroupCommit:
        group = GroupCommit(Scripts(client))
        made.append((group, client))
        return group

    yield make
    for group, client in made:
        group.close()
        client.close()


def test_concurrent_writes_each_get_their_own_replies_in_fewer_pipelines(redis_url: str, groups: Groups) -> None:
    """64 threads write 20 times each; every reply belongs to its own call, and batches formed."""
    client = connect(redis_url)
    group = groups(client)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                key = f"test:group:{n}"
                # zrem_unchanged on a missing member answers 0: a real script, a known reply.
                (reply,) = group.send(None, [("zrem_unchanged", [key], [f"m{i}", "1"])])
                assert reply == 0
                client.set(f"test:group:plain{n}", i)  # other traffic between writes
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert group.writes == 64 * 20
    assert group.batches < group.writes  # some writes shared a pipeline


def test_one_failed_call_fails_only_its_own_write(redis_url: str, groups: Groups) -> None:
    """A script refused by the server (wrong key type) fails its writer, not the batch."""
    client = connect(redis_url)
    client.set("test:group:string", "x")
    group = groups(client)
    results: dict[str, Any] = {}

    def good() -> None:
        results["good"] = group.send(None, [("zrem_unchanged", ["test:group:zset"], ["m", "1"])])

    def bad() -> None:
        try:
            group.send(None, [("zrem_unchanged", ["test:group:string"], ["m", "1"])])
        except StoreError as exc:
            results["bad"] = exc

    threads = [threading.Thread(target=f) for f in (good, bad, good)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["good"] == [0]
    assert isinstance(results["bad"], StoreError) and "WRONGTYPE" in str(results["bad"])


def test_an_unreachable_store_fails_every_waiting_writer(redis_url: str, groups: Groups) -> None:
    """A connection error reaches each writer of the batch as StoreError (they re-send by write id)."""
    group = groups(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    with pytest.raises(StoreError):
        group.send(None, [("zrem_unchanged", ["k"], ["m", "1"])])


def test_several_writes_of_one_thread_amid_others_each_get_their_replies(redis_url: str, groups: Groups) -> None:
    """`send_all` from 8 threads, next to 8 single writers: every write's own reply (or error), in order."""
    client = connect(redis_url)
    client.set("test:group:string2", "x")
    group = groups(client)
    errors: list[BaseException] = []

    def batch_writer(n: int) -> None:
        try:
            for _ in range(10):
                writes: list[tuple[str | None, list[Any]]] = [
                    (None, [("zrem_unchanged", [f"test:group:b{n}:{i}"], ["m", "1"])]) for i in range(6)
                ]
                writes.insert(3, (None, [("zrem_unchanged", ["test:group:string2"], ["m", "1"])]))  # refused
                results = group.send_all(writes)
                assert [r for i, r in enumerate(results) if i != 3] == [[0]] * 6
                assert isinstance(results[3], StoreError) and "WRONGTYPE" in str(results[3])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def single_writer(n: int) -> None:
        try:
            for _ in range(30):
                assert group.send(None, [("zrem_unchanged", [f"test:group:s{n}"], ["m", "1"])]) == [0]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=batch_writer, args=(n,)) for n in range(8)]
    threads += [threading.Thread(target=single_writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a writer never got its replies"
    assert not errors
    assert group.writes == 8 * 10 * 7 + 8 * 30


def test_the_batches_go_on_one_held_connection_until_the_group_is_closed(redis_url: str) -> None:
    """On a single server the leader sends every batch on the group's own connection (no pool round per batch);
    `close` hands it back. A cluster's client has no such pool: its batches go through its cluster pipeline."""
    client = connect(redis_url)
    group = GroupCommit(Scripts(client))
    try:
        threads = [
            threading.Thread(target=lambda n=n: [group.send(None, [("zrem_unchanged", [f"test:group:h{n}"], ["m", "1"])]) for _ in range(10)])
            for n in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert group.writes == 80
        held = group._connection.get()
        pool = getattr(client, "connection_pool", None)
        if pool is None:
            assert held is None
            return
        assert held is not None and held not in pool._available_connections and held in pool._in_use_connections
        group.close()
        assert held in pool._available_connections
    finally:
        client.close()
