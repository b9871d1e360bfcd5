"""Waiting requests on a `platform gateway` process: one subscription for all of them, and no lost wake-up.

The executions here are of a function no runner serves, so they stay pending
until the test finishes them itself: through the `finish` script (which
notifies), or "silently" (what the script writes, without the notification).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.gateway.helpers import ACT, Platform, gateway_process
from tests.support.finishing import finish, finish_silently, kill_connections, pending, subscribers
from tests.support.polling import wait_for

from dolmen.platform.store.connection import connect

DOUBLE = f"{ACT}.double"


@pytest.fixture
def url(platform: Platform) -> Iterator[str]:
    with gateway_process(platform) as url:
        yield url


@pytest.fixture
def client(platform: Platform) -> Iterator[redis.Redis]:
    c = connect(platform.redis_url)
    yield c
    c.close()


def connected(client: redis.Redis) -> int:
    return int(client.info("clients")["connected_clients"])  # type: ignore[index]


def test_500_waiting_requests_share_one_subscription_and_each_gets_its_result(url: str, client: redis.Redis) -> None:
    """500 long-polls hold neither a subscription nor a Redis connection each, and each returns its own result."""
    wait_for(lambda: subscribers(client) >= 1, timeout=10, what="the gateway's subscription")
    ids = [pending(client) for _ in range(500)]
    numsub_before, connected_before = subscribers(client), connected(client)
    observed: dict[str, int] = {}

    async def poll_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(ids), max_keepalive_connections=len(ids))
        async with httpx.AsyncClient(base_url=url, timeout=90, limits=limits, trust_env=False) as http:
            polls = [asyncio.create_task(http.get(f"/v1/executions/{i}/result?wait=60")) for i in ids]
            await asyncio.sleep(2.0)  # every request is waiting now
            assert not any(p.done() for p in polls)
            observed["numsub"] = await asyncio.to_thread(subscribers, client)
            observed["connected"] = await asyncio.to_thread(connected, client)
            for n, execution_id in enumerate(ids):
                await asyncio.to_thread(finish, client, execution_id, n)
            return await asyncio.gather(*polls)

    answers = asyncio.run(poll_all())
    assert observed["numsub"] == numsub_before
    assert observed["connected"] - connected_before < 20
    assert [a.status_code for a in answers] == [200] * len(ids)
    assert [(a.json()["execution_id"], a.json()["result"]) for a in answers] == [(i, n) for n, i in enumerate(ids)]


def test_a_waiting_request_is_answered_after_its_notification_is_lost(url: str, client: redis.Redis) -> None:
    """The finish is not notified and the subscription is killed: the re-subscribed gateway reads it and answers."""
    wait_for(lambda: subscribers(client) >= 1, timeout=10, what="the gateway's subscription")
    execution_id = pending(client)
    answer: dict[str, httpx.Response] = {}

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=90, trust_env=False) as http:
            answer["r"] = http.get(f"/v1/executions/{execution_id}/result?wait=60")

    waiting = threading.Thread(target=poll)
    waiting.start()
    time.sleep(1.0)
    finish_silently(client, execution_id, 11)
    kill_connections(client, "pubsub")
    waiting.join(timeout=20)
    assert not waiting.is_alive()
    assert answer["r"].status_code == 200
    assert answer["r"].json()["result"] == 11
    wait_for(lambda: subscribers(client) >= 1, timeout=10, what="the gateway to subscribe again")


def test_concurrent_posts_with_one_idempotency_key_make_one_execution(url: str) -> None:
    """Twenty simultaneous POSTs with the same key answer one execution id; one created it, the others replay."""
    key = f"k-{uuid.uuid4()}"

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60, trust_env=False) as http:
            return await asyncio.gather(
                *(http.post(f"/v1/functions/{DOUBLE}?wait=30", json={"x": 21}, headers={"Idempotency-Key": key}) for _ in range(20))
            )

    answers = asyncio.run(post_all())
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["execution_id"] for a in answers}) == 1
    assert {a.json()["result"] for a in answers} == {42}
    assert sum(1 for a in answers if a.headers.get("idempotent-replayed") != "true") == 1
