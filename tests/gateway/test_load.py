"""Load: 2,000 invocations from 32 concurrent clients, each finished exactly once.

The gateway runs as its own `platform gateway` process (so the load generator
does not share its interpreter) in front of the package's runner and
scheduler. Timings are printed and recorded as test properties, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from dolmen.platform.store import keys
from dolmen.platform.store.connection import connect
from tests.gateway.helpers import ACT, Platform, gateway_process

pytestmark = pytest.mark.slow

INVOCATIONS = 2000
CLIENTS = 32


@pytest.fixture
def gateway_url(platform: Platform) -> Iterator[str]:
    """`platform gateway` as a separate process; yields its URL."""
    with gateway_process(platform) as url:
        yield url


async def run_load(url: str, n: int, clients: int) -> tuple[list[float], list[tuple[int, int, str]], float]:
    """POST `double(i)` with ?wait for i < n from `clients` workers; latencies, (i, status, body) and the wall time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    latencies: list[float] = []
    answers: list[tuple[int, int, str]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, trust_env=False) as http:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                start = time.perf_counter()
                try:
                    response = await http.post(f"/v1/functions/{ACT}.double?wait=60", json={"x": i})
                except httpx.TransportError as failed:
                    # Recorded, not raised: the assertion shows every failure with the gateway's log.
                    answers.append((i, 0, f"{type(failed).__name__}: {failed}"))
                    continue
                latencies.append(time.perf_counter() - start)
                answers.append((i, response.status_code, response.text))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    return latencies, answers, wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def test_2000_invocations_from_32_clients_each_finish_exactly_once(
    gateway_url: str, platform: Platform, record_property: Callable[[str, object], None]
) -> None:
    """Every invocation answers 200 with the right result, and each execution logs one `finished`."""
    latencies, answers, wall = asyncio.run(run_load(gateway_url, INVOCATIONS, CLIENTS))
    errors = [(i, status, body[:200]) for i, status, body in answers if status != 200]
    if errors:
        log = platform.logs / f"gateway-{gateway_url.rsplit(':', 1)[1]}.log"
        pytest.fail(f"{len(errors)} of {INVOCATIONS} failed, e.g. {errors[:5]}; the gateway's log:\n{log.read_text()[-4000:]}")
    ids: dict[str, int] = {}
    for i, _, body in answers:
        data = json.loads(body)
        assert data["status"] == "finished" and data["result"] == 2 * i, data
        ids[data["execution_id"]] = i
    assert len(ids) == INVOCATIONS

    client = connect(platform.redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for execution_id in ids:
            pipe.xrange(keys.log(execution_id))
        logs = pipe.execute()
    finally:
        client.close()
    finished_counts = [sum(1 for _, fields in log if fields[b"t"] == b"finished") for log in logs]
    assert finished_counts == [1] * INVOCATIONS

    rate = INVOCATIONS / wall
    stats = {
        "invocations": INVOCATIONS,
        "clients": CLIENTS,
        "wall_s": round(wall, 2),
        "invocations_per_s": round(rate, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }
    for key, value in stats.items():
        record_property(key, value)
    print(f"\ngateway load (POST ?wait, invoke to finished result): {json.dumps(stats)}")
