"""A full Valkey under a running platform: submissions are refused whole with 507, accepted executions still finish.

The platform runs on a Valkey of its own, started with maxmemory and the
noeviction policy as `platform up` runs it; `Filler` writes filler keys until
Valkey refuses one, and removes them to make room again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from dolmen.platform.client import Client
from dolmen.platform.errors import StoreFullError
from dolmen.platform.store import keys
from tests.gateway.helpers import ACT, PLATFORM, GatewayThread, Platform, deploy_test_components, settings_for
from tests.support.guests import DATA_DIR
from tests.support.memory import FILLER, START_MAXMEMORY, Filler, valkey_with_maxmemory
from tests.support.polling import wait_for
from tests.support import indexes

NAP = f"{ACT}.nap"
DOUBLE = f"{ACT}.double"


@pytest.fixture(scope="module")
def full_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, GatewayThread]]:
    """The test components deployed on a Valkey with maxmemory; one runner thread, a scheduler, a gateway."""
    server = valkey_with_maxmemory(tmp_path_factory.mktemp("valkey-maxmemory"))
    url = server.start()
    running = Platform(url, DATA_DIR, deploy_test_components(url), tmp_path_factory.mktemp("full-logs"))
    running.start_services(runner_concurrency=1)
    gateway = GatewayThread(settings_for(running)).start()
    try:
        yield running, gateway
    finally:
        gateway.stop()
        running.stop_services()
        server.stop()


@pytest.fixture
def redis_client(full_platform: tuple[Platform, GatewayThread]) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(full_platform[0].redis_url)
    c.config_set("maxmemory", START_MAXMEMORY)
    yield c
    c.close()


@pytest.fixture
def filler(redis_client: redis.Redis) -> Iterator[Filler]:
    """Fills the platform's Valkey; whatever it filled is freed after the test."""
    fill = Filler(redis_client)
    yield fill
    if fill.written:
        fill.free()


@pytest.fixture
def http(full_platform: tuple[Platform, GatewayThread]) -> Iterator[httpx.Client]:
    with full_platform[1].client() as client:
        yield client


def stored(client: redis.Redis) -> dict[str, Any]:
    """What executions leave in Valkey: their keys, queue lengths and indexes (not heartbeats, recovery marks, filler)."""
    shards = indexes.shards_of(client)  # first: sets the count if no process has yet
    names = sorted(k.decode() for k in client.scan_iter(count=1000))  # type: ignore[union-attr]
    skip = (FILLER, *shards.every("dirty"), "dolmen:processes", "dolmen:metrics")
    return {
        "keys": [n for n in names if not n.startswith(skip)],
        "queues": {n: client.xlen(n) for n in names if ":q:" in n},
        "executions": indexes.zcard(client, "executions"),
        "active": indexes.zcard(client, "active"),
    }


def assert_store_full(response: httpx.Response) -> str:
    """A 507 answer with code store_full whose message says what to do; returns the message."""
    assert response.status_code == 507, response.text
    error = response.json()["error"]
    assert error["code"] == "store_full"
    assert "nothing of it was stored" in error["message"]
    assert "`platform executions purge`" in error["message"] and "--maxmemory" in error["message"]
    return str(error["message"])


def test_a_submission_when_full_is_507_and_stores_nothing(
    full_platform: tuple[Platform, GatewayThread], http: httpx.Client, redis_client: redis.Redis, filler: Filler
) -> None:
    """Over HTTP (by name and by route) and through the Client, a submission to a full store is refused and leaves no trace."""
    platform, _ = full_platform
    filler.fill()
    before = stored(redis_client)
    assert_store_full(http.post(f"/v1/functions/{DOUBLE}", json=[21], headers={"Idempotency-Key": "full-1"}))
    assert_store_full(http.post(f"/v1/functions/{DOUBLE}?wait=5", json={"x": 21}))
    assert_store_full(http.post("/double/21"))
    client = Client.connect(platform.redis_url)
    try:
        with pytest.raises(StoreFullError, match="nothing of it was stored"):
            client.submit(DOUBLE, [21], idempotency_key="full-2")
    finally:
        client.close()
    assert stored(redis_client) == before
    assert redis_client.exists(keys.idempotency("full-1"), keys.idempotency("full-2")) == 0
    # With room again, the same request (same key) is accepted and runs.
    filler.free()
    again = http.post(f"/v1/functions/{DOUBLE}?wait=30", json=[21], headers={"Idempotency-Key": "full-1"})
    assert again.status_code == 200 and again.json()["result"] == 42, again.text


def test_executions_accepted_before_it_filled_up_finish_once_memory_is_freed(
    full_platform: tuple[Platform, GatewayThread], http: httpx.Client, filler: Filler
) -> None:
    """A running activity whose result is refused waits in its runner and writes it later; a queued one runs after."""
    platform, _ = full_platform
    running = http.post(f"/v1/functions/{NAP}", json=[2500]).json()["execution_id"]
    wait_for(lambda: http.get(f"/v1/executions/{running}").json()["status"] == "running", what="the nap to run")
    queued = http.post(f"/v1/functions/{DOUBLE}", json=[21]).json()["execution_id"]  # behind it: one runner thread
    filler.fill()
    log = platform.logs / "runner.log"
    wait_for(lambda: "store full: waiting to write" in log.read_text(), timeout=15, what="the runner to wait for room")
    time.sleep(1.0)
    assert http.get(f"/v1/executions/{running}").json()["status"] == "running"  # its result is not lost, nor re-run
    assert http.get(f"/v1/executions/{queued}").json()["status"] == "pending"
    filler.free()
    for execution_id, result in ((running, 2500), (queued, 42)):
        answer = http.get(f"/v1/executions/{execution_id}/result?wait=30")
        assert answer.status_code == 200 and answer.json()["result"] == result, answer.text
    events = [e["type"] for e in http.get(f"/v1/executions/{running}/events").json()["events"]]
    assert events == ["created", "finished"]  # one attempt: no attempt_lost, no attempt_failed
    assert http.get(f"/v1/executions/{running}").json()["attempt"] == 1


def test_platform_status_shows_the_memory_figures(
    full_platform: tuple[Platform, GatewayThread], filler: Filler, tmp_path: Path
) -> None:
    """`platform status` reports used memory, maxmemory and the percentage, and calls a full store a problem."""
    platform, _ = full_platform
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOLMEN_")}
    command = [PLATFORM, "--redis", platform.redis_url, "--data-dir", str(tmp_path), "status"]

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30, env=env)

    roomy = status("--json")
    assert roomy.returncode == 0, roomy.stdout + roomy.stderr
    memory = json.loads(roomy.stdout)["memory"]
    assert memory["maxmemory"] == 512 * 1024**2 and memory["maxmemory_policy"] == "noeviction"
    assert 0 < memory["used_memory"] < memory["maxmemory"] and not memory["full"]
    assert memory["used_percent"] == round(100 * memory["used_memory"] / memory["maxmemory"], 1)
    filler.fill()
    full = status("--json")
    assert full.returncode == 1
    report = json.loads(full.stdout)
    assert report["memory"]["full"] and report["memory"]["used_percent"] >= 100
    assert any(p.startswith("Redis is full") and "platform executions purge" in p for p in report["problems"])
    human = status()
    assert human.returncode == 1
    line = next(x for x in human.stdout.splitlines() if x.startswith("Memory"))
    assert "used of maxmemory" in line and "%)" in line and "policy noeviction" in line


def test_platform_status_calls_a_store_full_for_large_writes_full(
    full_platform: tuple[Platform, GatewayThread], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """A store with less room than one large write refuses it while its used figure stays under the limit: status says full."""
    platform, _ = full_platform
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOLMEN_")}
    command = [PLATFORM, "--redis", platform.redis_url, "--data-dir", str(tmp_path), "status", "--json"]
    used = int(redis_client.info("memory")["used_memory"])  # type: ignore[index]
    redis_client.config_set("maxmemory", used + 1024**2)
    try:
        # What users saw: a 2 MiB request refused, the figure read afterwards under maxmemory.
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            redis_client.set(f"{FILLER}large", "x" * 2 * 1024**2)
        report = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
        assert report.returncode == 1, report.stdout + report.stderr
        memory = json.loads(report.stdout)["memory"]
        # Used may be just under maxmemory or, with the platform's own small writes meanwhile, just over it.
        assert memory["full"] and memory["used_percent"] < 110
        problem = next(p for p in json.loads(report.stdout)["problems"] if p.startswith("Redis is full"))
        assert "platform executions purge" in problem
    finally:
        redis_client.config_set("maxmemory", START_MAXMEMORY)
