"""Creates from the event loop: the same write as the synchronous create, in shared round trips.

The write protocol holds: the `create` script after the tree's dirty mark,
its outbox messages carried out only once it answered, a repeat answered as
the first, and round trips re-sent after a connection error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis

from dolmen.platform.errors import ConflictError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.async_batch import AsyncBatcher
from dolmen.platform.store.async_creates import AsyncCreates
from dolmen.platform.store.connection import connect_async, is_cluster
from dolmen.platform.store.creates import Created, NewExecution
from dolmen.platform.store.executions import ExecutionStore
from tests.support.finishing import kill_connections
from tests.support.polling import wait_for
from tests.support import indexes

ACT = "t:p/i@1.0.0.act"
T = TypeVar("T")


def new(execution_id: str | None = None, params: list[Any] | None = None) -> NewExecution:
    return NewExecution(
        id=execution_id or ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x",
        params=[1] if params is None else params, revision=3, component="c",
    )  # fmt: skip


def run(redis_url: str, test: Callable[[AsyncCreates], Awaitable[T]]) -> T:
    async def main() -> T:
        aredis = connect_async(redis_url)
        batcher = AsyncBatcher(aredis)
        try:
            return await test(AsyncCreates(batcher))
        finally:
            await batcher.close()
            await aredis.aclose()

    return asyncio.run(main())


def queued(client: redis.Redis) -> list[str]:
    return [f[b"id"].decode() for _, f in indexes.queue_entries(client, ACT)]  # type: ignore[union-attr]


def written(client: redis.Redis, execution_id: str) -> dict[str, Any]:
    """What a create leaves behind for one execution, without what differs by id and time."""
    state = {k.decode(): v.decode() for k, v in client.hgetall(keys.state(execution_id)).items()}  # type: ignore[union-attr]
    for varying in ("id", "created_at", "updated_at", "cwid"):
        state.pop(varying)
    (created,) = client.xrange(keys.log(execution_id))  # type: ignore[misc]
    return {
        "state": state,
        "created": {k: v for k, v in created[1].items() if k != b"at"},
        "queued": queued(client).count(execution_id),
        "indexed": [indexes.zscore(client, "executions", execution_id) is not None, indexes.zscore(client, "active", execution_id) is not None],
        "outbox": client.llen(keys.outbox(execution_id)),
        # The writer removed its own mark once the effects were out.
        "dirty": [m for m in indexes.zmembers(client, "dirty") if m.decode().startswith(execution_id)],  # type: ignore[union-attr]
    }


def test_an_async_create_writes_what_the_sync_create_writes(client: redis.Redis, redis_url: str) -> None:
    """State, `created` event, queue entry, indexes, empty outbox and dirty mark are the same as `ExecutionStore.create`'s."""
    sync_new, async_new = new(), new()
    assert ExecutionStore(client).create(sync_new) == Created(sync_new.id, True)
    assert run(redis_url, lambda creates: creates.create(async_new)) == Created(async_new.id, True)
    wait_for(lambda: async_new.id in queued(client), timeout=10, what="the async create's effects")
    assert written(client, async_new.id) == written(client, sync_new.id)
    assert written(client, sync_new.id)["dirty"] == []


def test_a_repeated_create_is_answered_as_existing_and_other_inputs_conflict(redis_url: str) -> None:
    """Idempotent by id: the same call again is `created=False`; other params under the same id are refused."""
    execution = new()

    async def test(creates: AsyncCreates) -> list[Any]:
        first = await creates.create(execution)
        again = await creates.create(new(execution.id))
        with pytest.raises(ConflictError):
            await creates.create(new(execution.id, params=[2]))
        return [first, again]

    assert run(redis_url, test) == [Created(execution.id, True), Created(execution.id, False)]


def test_a_conflict_names_the_stored_params_as_json(redis_url: str) -> None:
    """The 409 message shows the params already stored as JSON (not Python's repr), so they can be pasted back."""
    execution = new(params=["a", True, None])

    async def test(creates: AsyncCreates) -> str:
        await creates.create(execution)
        with pytest.raises(ConflictError) as refused:
            await creates.create(new(execution.id, params=[2]))
        return refused.value.message

    assert f'{execution.ffqn} ["a", true, null])' in run(redis_url, test)


def test_an_idempotency_key_stays_bound_to_its_first_id(redis_url: str) -> None:
    """Claiming a key twice gives the first candidate both times."""

    async def test(creates: AsyncCreates) -> list[str]:
        return [await creates.claim_idempotency_key("k-1", "E_first"), await creates.claim_idempotency_key("k-1", "E_second")]

    assert run(redis_url, test) == ["E_first", "E_first"]


def test_concurrent_creates_share_round_trips_and_all_get_enqueued(client: redis.Redis, redis_url: str) -> None:
    """200 creates at once take a handful of round trips, and every one is enqueued and indexed once."""
    executions = [new() for _ in range(200)]

    async def test(creates: AsyncCreates) -> tuple[list[Created], int]:
        done = await asyncio.gather(*(creates.create(e) for e in executions))
        while creates.batcher.pending:
            await asyncio.sleep(0.01)
        return done, creates.batcher.round_trips

    done, round_trips = run(redis_url, test)
    assert all(c.created for c in done)
    # A cluster sends each create's dirty mark a round trip ahead, and effects to several masters.
    assert round_trips <= (20 if is_cluster(redis_url) else 10), round_trips
    wait_for(lambda: len(queued(client)) == 200, timeout=10, what="every create's enqueue")
    assert sorted(queued(client)) == sorted(e.id for e in executions)
    assert indexes.zcard(client, "active") == 200
    assert all(client.llen(keys.outbox(e.id)) == 0 for e in executions)


def test_a_caller_that_gives_up_still_gets_its_execution_enqueued(client: redis.Redis, redis_url: str) -> None:
    """Once the create is sent, its effects follow even if the request that asked for it was cancelled."""
    execution = new()

    async def test(creates: AsyncCreates) -> None:
        await creates.batcher.ready()  # the store's shards are known, as after a gateway's first create
        task = asyncio.create_task(creates.create(execution))
        await asyncio.sleep(0)  # queued in the batcher
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while creates.batcher.pending or creates.created == 0:
            await asyncio.sleep(0.01)

    run(redis_url, test)
    wait_for(lambda: queued(client) == [execution.id], timeout=10, what="the abandoned create's enqueue")


def test_scripts_flushed_from_the_server_are_loaded_again(client: redis.Redis, redis_url: str) -> None:
    """After SCRIPT FLUSH (a restarted server), a create loads the scripts and succeeds."""
    execution = new()
    client.script_flush()
    assert run(redis_url, lambda creates: creates.create(execution)) == Created(execution.id, True)


def test_a_round_trip_on_a_killed_connection_is_sent_again(client: redis.Redis, redis_url: str) -> None:
    """The shared connection dies between two creates: the second is re-sent on a new one and answered."""
    first, second = new(), new()

    async def test(creates: AsyncCreates) -> list[Created]:
        one = await creates.create(first)
        await asyncio.to_thread(kill_connections, client, "normal")
        return [one, await creates.create(second)]

    assert run(redis_url, test) == [Created(first.id, True), Created(second.id, True)]
    wait_for(lambda: sorted(queued(client)) == sorted([first.id, second.id]), timeout=10, what="both enqueues")
