"""Following a log live: one pure `LogFollower`, and the sync and async stores' `follow` that drive it alike.

The stores are driven against the test Valkey with the same script (events
appended while they wait, a quiet read, `finished`), and must hand out the
same sequence: the events past `after`, None for a read that waited in vain,
and nothing after `finished`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from dolmen.platform.errors import NotFoundError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.async_executions import AsyncExecutions
from dolmen.platform.store.connection import MAX_BLOCK_MS, connect_async
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.follow import LogFollower, Read, read_events
from dolmen.platform.store.records import Event

WF = "t:p/i@1.0.0.wf"
MISSING = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"


def entry(sid: str, type_: str, data: dict[str, Any] | None = None) -> tuple[bytes, dict[bytes, bytes]]:
    """A log entry as redis-py reads it."""
    return sid.encode(), {b"t": type_.encode(), b"d": json.dumps(data or {}).encode(), b"at": b"1000"}


def types(items: list[Event | None]) -> list[str | None]:
    return [None if item is None else item.type for item in items]


# ------------------------------------------------------------------- the pure part


def test_the_whole_log_is_handed_out_past_after() -> None:
    """The log read first gives the events above `after`, indexed from 0, and the next read starts after its last entry."""
    follower = LogFollower("E_A", after=1, deadline=100.0)
    events = follower.take_log([entry("1-0", "created"), entry("2-0", "delay_requested"), entry("3-0", "response")])
    assert [(e.index, e.type) for e in events] == [(2, "response")]
    assert follower.next_read(99.0) == Read({keys.log("E_A"): "3-0"}, 1000)
    assert not follower.finished


def test_a_read_waits_at_most_max_block_ms_and_at_least_one() -> None:
    """A read blocks for the time left, capped at `MAX_BLOCK_MS` so a dead server is noticed, and never for 0 (for ever)."""
    follower = LogFollower("E_A", after=-1, deadline=100.0)
    assert follower.next_read(0.0) == Read({keys.log("E_A"): "0-0"}, MAX_BLOCK_MS)
    assert follower.next_read(99.9995) == Read({keys.log("E_A"): "0-0"}, 1)
    assert follower.next_read(100.0) is None and follower.next_read(101.0) is None


def test_a_read_that_timed_out_is_a_keep_alive_and_one_that_brought_entries_continues_the_count() -> None:
    """An empty XREAD reply hands out [None]; entries continue the indexes and move the next read's start."""
    follower = LogFollower("E_A", after=-1, deadline=100.0)
    follower.take_log([entry("1-0", "created")])
    assert follower.take_read(None) == [None] and follower.take_read([]) == [None]
    reply = [[keys.log("E_A").encode(), [entry("5-0", "delay_requested"), entry("6-0", "response")]]]
    assert [(e.index, e.type) for e in follower.take_read(reply) if e is not None] == [(1, "delay_requested"), (2, "response")]
    assert follower.next_read(0.0) == Read({keys.log("E_A"): "6-0"}, MAX_BLOCK_MS)


def test_finished_ends_the_follow_and_nothing_after_it_is_handed_out() -> None:
    """`finished` is the last event handed out, in the log read first or in a later read; then there is no next read."""
    first = LogFollower("E_A", after=-1, deadline=100.0)
    assert types(list(first.take_log([entry("1-0", "created"), entry("2-0", "finished")]))) == ["created", "finished"]
    assert first.finished and first.next_read(0.0) is None
    later = LogFollower("E_B", after=-1, deadline=100.0)
    later.take_log([entry("1-0", "created")])
    reply = [[b"k", [entry("2-0", "finished"), entry("3-0", "response")]]]
    assert types(later.take_read(reply)) == ["finished"]
    assert later.next_read(0.0) is None


def test_a_finished_log_read_by_a_reader_past_its_end_hands_out_nothing() -> None:
    """A reader that has seen everything (`after` at the last index) of a finished log gets nothing and stops."""
    follower = LogFollower("E_A", after=1, deadline=100.0)
    assert follower.take_log([entry("1-0", "created"), entry("2-0", "finished")]) == []
    assert follower.next_read(0.0) is None


def test_read_events_decodes_an_xread_reply_from_an_index() -> None:
    """The blocking read of the workflow executor (`events_after`) decodes with the same function."""
    reply = [[b"k", [entry("7-0", "response", {"x": 1})]]]
    (event,) = read_events(reply, 4)
    assert (event.index, event.type, event.data, event.stream_id) == (4, "response", {"x": 1}, "7-0")
    assert read_events(None, 4) == []


# ------------------------------------------------------------- the two stores, alike


@pytest.fixture
def execution(client: redis.Redis) -> str:
    """A new workflow execution: its log holds `created`."""
    new = NewExecution(id=ExecutionId.new().value, ffqn=WF, kind="workflow", digest="sha256:x", params=[1])
    ExecutionStore(client).create(new)
    return new.id


def append(client: redis.Redis, execution_id: str, type_: str) -> None:
    client.xadd(keys.log(execution_id), {"t": type_, "d": json.dumps({}), "at": int(time.time() * 1000)})


def later(*steps: tuple[float, Callable[[], None]]) -> threading.Thread:
    """Run each step at its time (seconds from now) in a thread."""

    def run() -> None:
        start = time.monotonic()
        for at, step in steps:
            time.sleep(max(0.0, start + at - time.monotonic()))
            step()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def follow_sync(redis_url: str, client: redis.Redis, execution_id: str, **kwargs: Any) -> list[Event | None]:
    return list(ExecutionStore(client).follow(execution_id, **kwargs))


def follow_async(redis_url: str, client: redis.Redis, execution_id: str, **kwargs: Any) -> list[Event | None]:
    async def main() -> list[Event | None]:
        aredis = connect_async(redis_url)
        executions = AsyncExecutions(aredis)
        try:
            return [item async for item in executions.follow(execution_id, **kwargs)]
        finally:
            await executions.close()
            await aredis.aclose()

    return asyncio.run(main())


FOLLOWERS = {"sync": follow_sync, "async": follow_async}


@pytest.fixture(params=sorted(FOLLOWERS))
def follow(request: pytest.FixtureRequest) -> Iterator[Callable[..., list[Event | None]]]:
    """`ExecutionStore.follow` or `AsyncExecutions.follow`, collected into a list."""
    yield FOLLOWERS[request.param]


def test_both_stores_hand_out_appended_events_until_finished(
    follow: Callable[..., list[Event | None]], redis_url: str, client: redis.Redis, execution: str
) -> None:
    """Events appended while following arrive in order, with their indexes; `finished` ends it long before the timeout."""
    thread = later(
        (0.2, lambda: append(client, execution, "delay_requested")),
        (0.4, lambda: append(client, execution, "response")),
        (0.6, lambda: append(client, execution, "finished")),
    )
    started = time.monotonic()
    items = follow(redis_url, client, execution, timeout_s=30)
    thread.join()
    assert time.monotonic() - started < 10
    events = [item for item in items if item is not None]
    assert [(e.index, e.type) for e in events] == [(0, "created"), (1, "delay_requested"), (2, "response"), (3, "finished")]


def test_both_stores_yield_none_for_a_read_that_waited_in_vain_and_stop_at_the_timeout(
    follow: Callable[..., list[Event | None]], redis_url: str, client: redis.Redis, execution: str
) -> None:
    """Nothing appended: the log, then None for each empty blocking read, until `timeout_s` has passed."""
    started = time.monotonic()
    items = follow(redis_url, client, execution, timeout_s=0.5)
    took = time.monotonic() - started
    assert types(items)[0] == "created" and len(items) >= 2 and set(types(items)[1:]) == {None}
    assert 0.45 <= took < 5


def test_both_stores_skip_what_a_reconnecting_reader_has_seen(
    follow: Callable[..., list[Event | None]], redis_url: str, client: redis.Redis, execution: str
) -> None:
    """With `after`, the log read first and later reads hand out only the events with a greater index."""
    append(client, execution, "delay_requested")
    append(client, execution, "response")
    thread = later((0.2, lambda: append(client, execution, "finished")))
    items = follow(redis_url, client, execution, after=1, timeout_s=30)
    thread.join()
    assert [(e.index, e.type) for e in items if e is not None] == [(2, "response"), (3, "finished")]


def test_both_stores_refuse_an_unknown_execution(
    follow: Callable[..., list[Event | None]], redis_url: str, client: redis.Redis
) -> None:
    """Following an execution that does not exist raises `NotFoundError`, not an empty or endless stream."""
    with pytest.raises(NotFoundError, match=MISSING):
        follow(redis_url, client, MISSING, timeout_s=5)
