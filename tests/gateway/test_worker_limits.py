"""Function limits and pauses apply to external workers' claims too: a gateway and runners share one count (store/limits.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dolmen.gateway.settings import GatewaySettings
from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig, FunctionLimits
from tests.gateway.helpers import GatewayThread
from tests.support.guests import DATA_DIR, build_stub_guest
from tests.support.platform import deploy

S = "testing:stub/approvals@1.0.0.approve"


@pytest.fixture
def http(redis_url: str) -> Iterator[httpx.Client]:
    """stub-approvals as `kind: external` with at most one attempt at once, and a gateway (no runner: workers run it)."""
    approvals = ComponentConfig(
        "approvals", "external", "", "tests/components/stub-approvals", {}, limits=FunctionLimits(max_running=1)
    )
    deploy(redis_url, [(approvals, build_stub_guest("stub-approvals", "stubs"))])
    server = GatewayThread(GatewaySettings(redis_url=redis_url, data_dir=DATA_DIR)).start()
    try:
        with server.client() as client:
            yield client
    finally:
        server.stop()


def _claim(http: httpx.Client, wait_s: float) -> list[dict[str, Any]]:
    answer = http.post("/v1/workers/claim", json={"ffqns": [S], "lease_ms": 30_000, "wait_s": wait_s, "count": 5})
    assert answer.status_code == 200, answer.text
    return answer.json()["tasks"]


def _complete(http: httpx.Client, task: dict[str, Any]) -> None:
    answer = http.post(
        f"/v1/workers/tasks/{task['execution_id']}/complete", json={"token": task["lease"]["token"], "result": {"ok": "yes"}}
    )
    assert answer.status_code == 200, answer.text


def test_a_limited_external_function_is_claimed_one_at_a_time(http: httpx.Client, client: Client) -> None:
    """With max_running 1, a claim for five gets one task; another claim gets none until it is completed, then the next."""
    ids = {client.submit(S, [f"order-{i}"]).execution_id for i in range(2)}
    (first,) = _claim(http, wait_s=5)
    assert _claim(http, wait_s=0.6) == []  # the other waits in its queue
    assert client.get(first["execution_id"]).status == "running"
    _complete(http, first)
    (second,) = _claim(http, wait_s=5)  # completing it gave its permit back
    assert {first["execution_id"], second["execution_id"]} == ids
    _complete(http, second)
    assert client.redis.zcard(f"dolmen:{{lim:{S}}}:running") == 0


def test_a_function_paused_as_a_whole_is_not_claimed_until_it_is_resumed(http: httpx.Client, client: Client) -> None:
    """Pausing an external function stops workers' claims of it as it stops runners; resuming lets the claim through."""
    execution_id = client.submit(S, ["order-p"]).execution_id
    assert http.post(f"/v1/functions/{S}/pause").json() == {"ffqn": S, "pause": "done"}
    try:
        # Claims read the paused functions at most a second late.
        time.sleep(1.2)
        assert _claim(http, wait_s=0.6) == []
        assert client.get(execution_id).status == "pending"
    finally:
        assert http.post(f"/v1/functions/{S}/resume").json() == {"ffqn": S, "resume": "done"}
    (task,) = _claim(http, wait_s=5)  # a waiting claim notices the resume within its wait
    assert task["execution_id"] == execution_id
    _complete(http, task)
