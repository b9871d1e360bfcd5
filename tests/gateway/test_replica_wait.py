"""`--wait-replicas`: the gateway answers a write only once replicas of its master have it.

A real Valkey master with one replica, the test components deployed, no
runner (an invocation's answer is 202, which is what is being waited for).
With the replica there, invocations, route calls and cancels are answered
and the replica holds them; without it, the answer is a 503 that says the
write is on the master only and what is safe to do: the execution is there
all the same, and a retry with the same Idempotency-Key goes through once
the replica is back.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from dolmen.gateway.settings import GatewaySettings
from dolmen.platform.model import Revision
from dolmen.platform.errors import ConfigError
from dolmen.platform.store import keys
from dolmen.platform.store.async_links import ReplicaWait
from tests.gateway.helpers import ACT, GatewayThread, Platform, deploy_test_components, gateway_process
from tests.support.cli import run_platform
from tests.support.guests import DATA_DIR
from tests.support.servers import ValkeyForTests, start_replica, wait_in_sync

DOUBLE = f"{ACT}.double"
TIMEOUT_MS = 300


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ValkeyForTests, ValkeyForTests, Revision]]:
    """A master with the test components deployed, and its replica."""
    base = tmp_path_factory.mktemp("replicated-gateway")
    master = ValkeyForTests(base / "master")
    master.start()
    replica = start_replica(master, base / "replica")
    revision = deploy_test_components(master.url)
    yield master, replica, revision
    replica.stop()
    master.stop()


@pytest.fixture
def replica(servers: tuple[ValkeyForTests, ValkeyForTests, Revision]) -> Iterator[ValkeyForTests]:
    """The replica, in sync (started again after a test that stopped it)."""
    replica = servers[1]
    if replica.server is None:
        replica.start()
    wait_in_sync(replica)
    yield replica


@pytest.fixture
def start_gateway(
    servers: tuple[ValkeyForTests, ValkeyForTests, Revision], replica: ValkeyForTests
) -> Iterator[Callable[..., httpx.Client]]:
    """Start a gateway on the master with these settings; an HTTP client for it, closed after the test."""
    started: list[tuple[GatewayThread, httpx.Client]] = []

    def start(**changes: Any) -> httpx.Client:
        settings = GatewaySettings(redis_url=servers[0].url, data_dir=DATA_DIR, route_wait_s=0.0).replace(**changes)
        gateway = GatewayThread(settings).start()
        http = gateway.client()
        started.append((gateway, http))
        return http

    yield start
    for gateway, http in started:
        http.close()
        gateway.stop()


def on(server: ValkeyForTests, execution_id: str) -> dict[bytes, bytes]:
    """The execution's state as `server` holds it now."""
    client = redis.Redis.from_url(server.url)
    try:
        return client.hgetall(keys.state(execution_id))  # type: ignore[return-value]
    finally:
        client.close()


def test_invocations_routes_and_cancels_are_answered_once_the_replica_has_them(
    start_gateway: Callable[..., httpx.Client], replica: ValkeyForTests
) -> None:
    """With one replica to wait for, every write is answered as usual, and the replica holds it when it is."""
    http = start_gateway(wait_replicas=1, wait_timeout_ms=TIMEOUT_MS)
    answers = [http.post(f"/v1/functions/{DOUBLE}", json={"x": n}) for n in range(5)]
    answers.append(http.post(f"/v1/functions/{DOUBLE}", json={"x": 5}, headers={"Idempotency-Key": str(uuid.uuid4())}))
    answers.append(http.post("/double/6"))  # a deployment route
    assert [a.status_code for a in answers] == [202] * 7
    for answer in answers:
        assert on(replica, answer.headers["Dolmen-Execution-Id"])[b"status"] == b"pending"
    cancelled = http.post(f"/v1/executions/{answers[0].json()['execution_id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel"] == "cancelled"
    assert on(replica, answers[0].json()["execution_id"])[b"status"] == b"finished"


def test_an_invocation_the_replica_cannot_confirm_is_a_503_and_the_execution_is_there(
    start_gateway: Callable[..., httpx.Client], replica: ValkeyForTests, servers: tuple[ValkeyForTests, ...]
) -> None:
    """Replica stopped: 503 + Retry-After naming the master and the shortfall; the execution is on the master."""
    http = start_gateway(wait_replicas=1, wait_timeout_ms=TIMEOUT_MS)
    replica.stop()
    answer = http.post(f"/v1/functions/{DOUBLE}", json={"x": 7})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    error = answer.json()["error"]
    execution_id = error["execution_id"]
    assert error["code"] == "replicas_unconfirmed" and answer.headers["Dolmen-Execution-Id"] == execution_id
    assert error["message"] == (
        f"execution {execution_id} was accepted, but on the master at 127.0.0.1:{servers[0].port} only 0 of the 1 "
        f"replica asked for (--wait-replicas) confirmed it within {TIMEOUT_MS} ms: it could be lost if that master "
        "fails now. Do not simply retry: without an Idempotency-Key a retry starts a second execution; "
        f"GET /v1/executions/{execution_id} shows this one (send an Idempotency-Key to make retries safe); "
        "if this goes on, check that master's replicas (INFO replication on it)"
    )
    assert http.get(f"/v1/executions/{execution_id}").json()["status"] == "pending"  # accepted all the same


def test_an_idempotency_key_the_replica_cannot_confirm_creates_nothing_until_a_retry(
    start_gateway: Callable[..., httpx.Client], replica: ValkeyForTests
) -> None:
    """The key's binding is unconfirmed: 503 and no execution yet; the same key later creates it, once."""
    http = start_gateway(wait_replicas=1, wait_timeout_ms=TIMEOUT_MS)
    key = str(uuid.uuid4())
    replica.stop()
    answer = http.post(f"/v1/functions/{DOUBLE}", json={"x": 8}, headers={"Idempotency-Key": key})
    assert answer.status_code == 503 and "execution_id" not in answer.json()["error"]
    message = answer.json()["error"]["message"]
    assert message.startswith("this request's Idempotency-Key was bound, but on the master at 127.0.0.1:")
    assert "only 0 of the 1 replica asked for" in message
    assert "This request created no execution: retry with the same Idempotency-Key" in message
    replica.start()
    wait_in_sync(replica)
    created = http.post(f"/v1/functions/{DOUBLE}", json={"x": 8}, headers={"Idempotency-Key": key})
    assert created.status_code == 202 and "Idempotent-Replayed" not in created.headers
    again = http.post(f"/v1/functions/{DOUBLE}", json={"x": 8}, headers={"Idempotency-Key": key})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["execution_id"] == created.json()["execution_id"]


def test_more_replicas_than_the_master_has_fail_every_write_but_no_read(
    start_gateway: Callable[..., httpx.Client], replica: ValkeyForTests
) -> None:
    """Two replicas asked of a master with one: each write is a 503 (and stays done), reads answer at once."""
    http = start_gateway(wait_replicas=2, wait_timeout_ms=TIMEOUT_MS)
    answer = http.post(f"/v1/functions/{DOUBLE}", json={"x": 9})
    assert answer.status_code == 503
    assert "only 1 of the 2 replicas asked for" in answer.json()["error"]["message"]
    execution_id = answer.json()["error"]["execution_id"]
    assert on(replica, execution_id)[b"status"] == b"pending"  # one replica did confirm it
    read = http.get(f"/v1/executions/{execution_id}")
    assert read.status_code == 200 and read.elapsed.total_seconds() < TIMEOUT_MS / 1000
    keyed = http.post(f"/v1/functions/{DOUBLE}", json={"x": 9}, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert keyed.status_code == 503 and "This request created no execution" in keyed.json()["error"]["message"]


def test_a_cancel_the_replica_cannot_confirm_is_a_503_and_stays_done(
    start_gateway: Callable[..., httpx.Client], replica: ValkeyForTests
) -> None:
    """The cancel is recorded on the master; the answer says so, and that posting it again is safe."""
    http = start_gateway(wait_replicas=1, wait_timeout_ms=TIMEOUT_MS)
    execution_id = http.post(f"/v1/functions/{DOUBLE}", json={"x": 10}).json()["execution_id"]
    replica.stop()
    answer = http.post(f"/v1/executions/{execution_id}/cancel")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    message = answer.json()["error"]["message"]
    assert message.startswith(f"the cancel of execution {execution_id} was recorded, but on the master at 127.0.0.1:")
    assert "POST the cancel again, which is safe" in message
    assert http.get(f"/v1/executions/{execution_id}").json()["status"] == "finished"


def test_the_gateway_command_takes_the_wait_from_its_options_and_the_environment(
    servers: tuple[ValkeyForTests, ValkeyForTests, Revision], replica: ValkeyForTests, tmp_path: Path
) -> None:
    """`platform gateway --wait-replicas 2` and DOLMEN_WAIT_REPLICAS=2 both make its writes wait (and fall short)."""
    master, _, revision = servers
    platform = Platform(master.url, DATA_DIR, revision, tmp_path)
    by_env = {**os.environ, "DOLMEN_WAIT_REPLICAS": "2", "DOLMEN_WAIT_TIMEOUT_MS": str(TIMEOUT_MS)}
    with gateway_process(platform, "--wait-replicas", "2", "--wait-timeout-ms", str(TIMEOUT_MS)) as by_flags:
        with gateway_process(platform, env=by_env) as by_environment:
            for url in (by_flags, by_environment):
                answer = httpx.post(f"{url}/v1/functions/{DOUBLE}", json={"x": 11}, trust_env=False)
                assert answer.status_code == 503, url
                assert f"only 1 of the 2 replicas asked for (--wait-replicas) confirmed it within {TIMEOUT_MS} ms" in (
                    answer.json()["error"]["message"]
                )
            # Not refused at start (replicas may come), but `platform status` names it while it lasts.
            shown = run_platform("--redis", master.url, "status", "--json")
            assert shown.returncode == 1, shown.stderr
            problems = [p for p in json.loads(shown.stdout)["problems"] if "--wait-replicas" in p]
            assert len(problems) == 2, problems  # one per gateway
            assert all(f"waits for 2 replicas of each write (--wait-replicas), but the master at 127.0.0.1:{master.port} has 1" in p for p in problems)
            assert all("lower --wait-replicas to 1" in p for p in problems)


def test_the_settings_read_the_environment_and_the_options_win() -> None:
    """DOLMEN_WAIT_REPLICAS / DOLMEN_WAIT_TIMEOUT_MS, overridden by explicit values; bad ones name the fix."""
    environ = {"DOLMEN_WAIT_REPLICAS": "2", "DOLMEN_WAIT_TIMEOUT_MS": "500"}
    settings = GatewaySettings.from_env(redis_url="redis://h:1", data_dir=Path("."), environ=environ)
    assert settings.replica_wait == ReplicaWait(2, 500)
    explicit = GatewaySettings.from_env(
        redis_url="redis://h:1", data_dir=Path("."), environ=environ, wait_replicas=0, wait_timeout_ms=100
    )
    assert explicit.replica_wait is None and explicit.wait_timeout_ms == 100
    assert GatewaySettings.from_env(redis_url="redis://h:1", data_dir=Path("."), environ={}).replica_wait is None
    with pytest.raises(ConfigError, match=r"DOLMEN_WAIT_REPLICAS='-1' is not valid"):
        GatewaySettings.from_env(redis_url="redis://h:1", data_dir=Path("."), environ={"DOLMEN_WAIT_REPLICAS": "-1"})
    with pytest.raises(ConfigError, match=r"--wait-timeout-ms must be 1 to 10000 ms, got 60000"):
        GatewaySettings(redis_url="redis://h:1", data_dir=Path("."), wait_timeout_ms=60_000)
