"""Waiting for outcomes through one subscription: notified at once, never lost, shared by every waiter.

A "silent" finish below writes the `finished` state and event the way the
script does but publishes nothing: a notification that was lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis

from dolmen.platform.store.async_executions import AsyncExecutions
from dolmen.platform.store.connection import connect_async
from tests.support.finishing import finish, finish_silently, connections, kill_connections, pending, subscribers

T = TypeVar("T")


async def settled(executions: AsyncExecutions) -> None:
    """Until the watcher has no read of its waiters queued or under way."""
    while executions.watcher.reading:
        await asyncio.sleep(0.01)


def run(redis_url: str, test: Callable[[AsyncExecutions], Awaitable[T]], *, recheck_s: float = 60.0) -> T:
    """Run `test` on a fresh `AsyncExecutions` (re-checks every `recheck_s`) in its own event loop."""

    async def main() -> T:
        executions = AsyncExecutions(connect_async(redis_url))
        executions.watcher.recheck_s = recheck_s
        try:
            return await test(executions)
        finally:
            await executions.close()
            await executions.batcher.close()
            await executions.client.aclose()

    return asyncio.run(main())


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def test_a_waiter_is_resolved_by_the_notification(client: redis.Redis, redis_url: str) -> None:
    """A finish wakes its waiter through its notification (no periodic re-check runs within the test)."""
    execution_id = pending(client)

    async def test(executions: AsyncExecutions) -> tuple[Any, int]:
        waiting = asyncio.create_task(executions.wait_finished(execution_id, 30))
        await asyncio.wait_for(executions.watcher.subscribed.wait(), 10)
        await settled(executions)
        await in_thread(finish, client, execution_id, 42)
        state = await asyncio.wait_for(waiting, 10)
        return state, executions.watcher.notifications

    state, notifications = run(redis_url, test, recheck_s=3600)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == 42
    assert notifications >= 1


def test_an_execution_finished_before_anyone_subscribed_is_seen_when_the_subscription_starts(
    client: redis.Redis, redis_url: str
) -> None:
    """A waiter registered before its execution was last seen running hears of a finish nobody was subscribed for."""
    execution_id = pending(client)

    async def test(executions: AsyncExecutions) -> Any:
        await in_thread(finish, client, execution_id, 7)  # published to nobody
        # As the gateway does around a create: register, and do not read (it was pending).
        with executions.watch(execution_id) as watch:
            return await executions.outcome(watch, 10)

    state = run(redis_url, test)
    assert state.status == "finished" and state.outcome.value == 7


def test_a_lost_notification_is_made_up_for_by_resubscribing(client: redis.Redis, redis_url: str) -> None:
    """When the subscription's connection is killed, every waiter's state is read again once it is back."""
    execution_id = pending(client)

    async def test(executions: AsyncExecutions) -> tuple[Any, int]:
        waiting = asyncio.create_task(executions.wait_finished(execution_id, 30))
        await asyncio.wait_for(executions.watcher.subscribed.wait(), 10)
        await settled(executions)  # the waiter's first read, on subscribing, saw it pending
        await in_thread(finish_silently, client, execution_id, 5)
        await asyncio.sleep(0.2)
        assert not waiting.done()  # no notification, and no periodic re-check within the test
        await in_thread(kill_connections, client, "pubsub")
        state = await asyncio.wait_for(waiting, 10)
        return state, executions.watcher.subscriptions

    state, subscriptions = run(redis_url, test, recheck_s=3600)
    assert state.status == "finished" and state.outcome.value == 5
    assert subscriptions == 2


def test_a_lost_notification_only_delays_a_waiter_until_the_periodic_recheck(
    client: redis.Redis, redis_url: str
) -> None:
    """With the subscription intact, a finish whose message was lost is found by the next re-check."""
    execution_id = pending(client)

    async def test(executions: AsyncExecutions) -> tuple[Any, int, int]:
        waiting = asyncio.create_task(executions.wait_finished(execution_id, 30))
        await asyncio.wait_for(executions.watcher.subscribed.wait(), 10)
        await settled(executions)
        await in_thread(finish_silently, client, execution_id, 9)
        state = await asyncio.wait_for(waiting, 10)
        return state, executions.watcher.notifications, executions.watcher.subscriptions

    state, notifications, subscriptions = run(redis_url, test, recheck_s=0.5)
    assert state.status == "finished" and state.outcome.value == 9
    # Neither a notification nor a new subscription: the re-check found it.
    assert (notifications, subscriptions) == (0, 1)


def test_a_waiter_gives_up_after_its_timeout_with_the_state_as_it_is(client: redis.Redis, redis_url: str) -> None:
    """Nothing finishes: the wait returns the pending state when its time is up, and unregisters."""
    execution_id = pending(client)

    async def test(executions: AsyncExecutions) -> tuple[Any, float, int]:
        start = time.monotonic()
        state = await executions.wait_finished(execution_id, 0.3)
        return state, time.monotonic() - start, executions.watcher.waiting

    state, elapsed, waiting = run(redis_url, test)
    assert state.status == "pending"
    assert elapsed >= 0.3  # it waited its time out, not less
    assert waiting == 0


def test_500_waiters_share_one_subscription_and_all_resolve(client: redis.Redis, redis_url: str) -> None:
    """Concurrent waiters hold neither a connection nor a subscription each; every one gets its own result."""
    ids = [pending(client) for _ in range(500)]

    async def test(executions: AsyncExecutions) -> tuple[list[Any], int, int, int]:
        before = await in_thread(connections, client)
        # Counted from here: a subscription an earlier test closed may still be going away.
        numsub_before = await in_thread(subscribers, client)
        waits = [asyncio.create_task(executions.wait_finished(i, 60)) for i in ids]
        await asyncio.wait_for(executions.watcher.subscribed.wait(), 10)
        await asyncio.sleep(0.2)
        numsub = await in_thread(subscribers, client) - numsub_before
        during = await in_thread(connections, client)
        assert executions.watcher.waiting == len(ids)
        for n, execution_id in enumerate(ids):
            await in_thread(finish, client, execution_id, n)
        states = await asyncio.wait_for(asyncio.gather(*waits), 30)
        return states, numsub, during - before, executions.batcher.round_trips

    states, numsub, more_connections, round_trips = run(redis_url, test)
    assert numsub == 1
    # The subscription and the shared pipeline connection (one per master of a cluster, with its discovery links).
    assert more_connections <= (3 if not isinstance(client, redis.RedisCluster) else 2 * len(client.get_nodes()))
    assert [s.outcome.value for s in states] == list(range(500))
    assert all(s.id == i for s, i in zip(states, ids))
