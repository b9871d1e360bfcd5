"""2,000 concurrent long-polls on one gateway process all get their results, on a bounded number of Redis connections.

Each waiter holds `GET /v1/executions/{id}/result?wait=...` open while its
workflow sleeps durably; the gateway learns of every finish from its one
subscription (`FinishWatcher`), not from a connection per waiter. The size is
`DOLMEN_WAITERS` (default 2000). Timings are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Iterator

import httpx
import pytest

from dolmen.platform.client import Client
from dolmen.platform.store.connection import connect
from tests.gateway.helpers import WF, Platform, gateway_process

pytestmark = pytest.mark.slow

WAITERS = int(os.environ.get("DOLMEN_WAITERS", "2000"))
# Long enough for every waiter to be attached before the first workflow wakes up.
SLEEP_MS = 8_000


@pytest.fixture
def gateway_url(platform: Platform) -> Iterator[str]:
    # Each waiter is a socket at both ends: make room for them (the gateway inherits the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 2 * WAITERS + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        with gateway_process(platform) as url:
            yield url
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def wait_all(url: str, ids: list[str], peak: list[int], redis_url: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(ids) + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits, trust_env=False) as http:
        tasks = [asyncio.create_task(http.get(f"/v1/executions/{i}/result", params={"wait": "90"})) for i in ids]
        probe = connect(redis_url)
        try:
            while not all(t.done() for t in tasks):
                peak[0] = max(peak[0], len(probe.client_list()))
                await asyncio.sleep(0.5)
        finally:
            probe.close()
        return [t.result() for t in tasks]


def test_every_concurrent_waiter_gets_its_result(platform: Platform, gateway_url: str) -> None:
    client = Client.connect(platform.redis_url)
    try:
        ids = [client.submit(f"{WF}.sleepy", [SLEEP_MS]).execution_id for _ in range(WAITERS)]
    finally:
        client.close()
    started = time.monotonic()
    peak = [0]
    responses = asyncio.run(wait_all(gateway_url, ids, peak, platform.redis_url))
    print(f"\n{WAITERS} waiters answered in {time.monotonic() - started:.1f}s; at most {peak[0]} Redis connections")
    assert [r.status_code for r in responses].count(200) == WAITERS, {r.status_code for r in responses}
    for response in responses:
        value = response.json()["result"]
        assert value >= SLEEP_MS, response.text
    # Every runner, the scheduler, the gateway's pool and this test: far fewer than one per waiter.
    assert peak[0] < 200
