"""A `platform gateway` process that reaches Valkey through a `FaultProxy`.

Between the gateway and Valkey, connections are cut at random and replies to
script calls are lost (the script ran, the gateway never heard). Clients
invoke with an `Idempotency-Key` and retry until they get a result, as the
README tells them to. Every key must end up naming exactly one execution, with
its result; the gateway's shared round trips and its finish subscription come
back after every cut.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import httpx
import pytest
import redis

from dolmen.platform.store import keys
from tests.gateway.helpers import ACT, Platform, gateway_process
from tests.support.faultproxy import FaultProxy, proxy_to

pytestmark = pytest.mark.slow

DOUBLE = f"{ACT}.double"
BATCH = 40
# Invocations go on, a batch at a time, until at least this many faults happened.
LOST_REPLIES, CUTS, MAX_BATCHES = 25, 10, 40


@contextmanager
def faulty_gateway(platform: Platform) -> Iterator[tuple[str, FaultProxy]]:
    """A gateway process whose every Redis connection goes through a fault proxy."""
    with proxy_to(platform.redis_url) as proxy:
        behind = dataclasses.replace(platform, redis_url=proxy.url, procs=[])
        with gateway_process(behind) as gateway_url:
            yield gateway_url, proxy


async def invoke_until_answered(http: httpx.AsyncClient, key: str, x: int, errors: list[int]) -> tuple[str, int]:
    """POST with the key until a result comes back; 503s and broken connections are retried, others recorded."""
    for _ in range(200):
        try:
            answer = await http.post(f"/v1/functions/{DOUBLE}?wait=20", json={"x": x}, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            await asyncio.sleep(0.05)
            continue
        if answer.status_code == 200:
            body = answer.json()
            return body["execution_id"], body["result"]
        if answer.status_code != 503 and answer.status_code != 202:
            errors.append(answer.status_code)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no answer for {key} after 200 tries")


def executions_of(client: redis.Redis, values: set[int]) -> dict[int, list[str]]:
    """The executions of `DOUBLE` whose x is one of `values`, by x, read straight from Valkey."""
    found: dict[int, list[str]] = {}
    for key in client.scan_iter(match=f"{keys.PREFIX}:*:state", count=1000):
        ffqn, params, execution_id = cast("list[bytes | None]", client.hmget(key, ["ffqn", "params", "id"]))
        if ffqn is None or ffqn.decode() != DOUBLE:
            continue
        assert params is not None and execution_id is not None
        value = json.loads(params)
        x = value[0] if isinstance(value, list) else value.get("x")
        if x in values:
            found.setdefault(x, []).append(execution_id.decode())
    return found


def test_cut_connections_and_lost_replies_neither_lose_nor_duplicate_an_invocation(platform: Platform) -> None:
    run = uuid.uuid4().hex[:8]
    calls: dict[str, int] = {}
    answers: dict[str, tuple[str, int]] = {}
    errors: list[int] = []
    with faulty_gateway(platform) as (url, proxy):
        stop = threading.Event()

        def lose_replies() -> None:
            while not stop.wait(0.1):
                proxy.drop_next_reply(b"EVALSHA")

        loser = threading.Thread(target=lose_replies, daemon=True)
        loser.start()
        proxy.cut_randomly(2.0, seed=7)

        async def invoke(batch: dict[str, int]) -> list[tuple[str, int]]:
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, trust_env=False) as http:
                return await asyncio.gather(*(invoke_until_answered(http, k, x, errors) for k, x in batch.items()))

        try:
            for _ in range(MAX_BATCHES):
                if proxy.dropped_replies >= LOST_REPLIES and proxy.cuts >= CUTS:
                    break
                batch = {f"faults-{run}-{n}": 1_000_000 + n for n in range(len(calls), len(calls) + BATCH)}
                calls.update(batch)
                answers.update(zip(batch, asyncio.run(invoke(batch))))
        finally:
            stop.set()
            loser.join()
            proxy.stop_cutting()
        assert proxy.dropped_replies >= LOST_REPLIES and proxy.cuts >= CUTS, "the faults must have happened"
        # Answered again after the faults (a connection cut just before they stopped may still
        # answer 503, which asks to retry), each key names the execution it named before.
        replayed = asyncio.run(invoke(dict(calls)))
    assert errors == []
    assert dict(zip(calls, replayed)) == {k: answers[k] for k in calls}
    assert {k: result for k, (_, result) in answers.items()} == {k: 2 * x for k, x in calls.items()}
    client = redis.Redis.from_url(platform.redis_url)
    try:
        found = executions_of(client, set(calls.values()))
    finally:
        client.close()
    assert {x: ids for x, ids in found.items()} == {x: [answers[k][0]] for k, x in calls.items()}
