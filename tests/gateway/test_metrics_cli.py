"""/metrics through a real gateway, and `platform gateway` started as a process with tokens."""

from __future__ import annotations

import os
import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.helpers import ACT, Platform, gateway_process
from tests.support.polling import wait_for


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (read with prometheus_client's parser)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_metrics_count_executions_queues_and_latency(http: httpx.Client) -> None:
    """After invocations, /metrics shows finished executions, queue depths and latency histograms."""
    for x in range(3):
        assert http.post(f"/v1/functions/{ACT}.double?wait=30", json=[x]).status_code == 200
    response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "dolmen_executions", status="finished") >= 3
    assert sample(text, "dolmen_executions", status="pending") >= 0
    assert sample(text, "dolmen_queue_depth", ffqn=f"{ACT}.double") >= 0
    assert sample(text, "dolmen_gateway_request_duration_seconds_count", handler="invoke", code="2xx") >= 3
    assert sample(text, 'dolmen_gateway_request_duration_seconds_bucket', handler="invoke", code="2xx", le="+Inf") >= 3
    assert sample(text, "dolmen_gateway_execution_duration_seconds_count", kind="activity") >= 3
    assert sample(text, "dolmen_gateway_invocations_total", via="ffqn", outcome="created") >= 3
    assert "# TYPE dolmen_gateway_request_duration_seconds histogram" in text


def test_metrics_include_the_runners_and_schedulers_of_the_platform(http: httpx.Client) -> None:
    """The runner's attempt durations and the scheduler's timers reach /metrics, labelled by process (within a heartbeat)."""
    assert http.post(f"{'/v1/functions/'}{ACT}.double?wait=30", json=[5]).status_code == 200

    def scraped() -> str | None:
        text = http.get("/metrics").text
        return text if re.search(r'^dolmen_attempt_duration_seconds_count\{kind="activity",outcome="returned",process="runner:', text, re.M) else None

    text = wait_for(scraped, timeout=30, what="the runner's metrics in /metrics")
    assert "# TYPE dolmen_attempt_duration_seconds histogram" in text
    assert re.search(r'^dolmen_timers_fired_total\{process="scheduler:[^"]+"\} ', text, re.M), text
    assert text.count("# TYPE dolmen_lock_takeovers_total counter") == 1


def test_platform_gateway_command_serves_with_tokens_from_options_and_env(platform: Platform) -> None:
    """`platform gateway --token T:invoke` with DOLMEN_GATEWAY_TOKENS serves the API behind those tokens."""
    env = {**os.environ, "DOLMEN_GATEWAY_TOKENS": "from-env-admin-token"}
    args = ("--token", "cli-invoke-token:invoke", "--max-body-bytes", "100")
    with gateway_process(platform, *args, env=env) as url, httpx.Client(base_url=url, trust_env=False, timeout=30) as http:
        assert http.get("/v1/functions").status_code == 401
        invoker = {"Authorization": "Bearer cli-invoke-token"}
        assert http.post(f"/v1/functions/{ACT}.double?wait=30", json=[2], headers=invoker).json()["result"] == 4
        assert http.get("/metrics", headers=invoker).status_code == 403
        assert http.get("/metrics", headers={"Authorization": "Bearer from-env-admin-token"}).status_code == 200
        too_big = http.post(f"/v1/functions/{ACT}.slow", json={"ms": 1, "tag": "x" * 200}, headers=invoker)
        assert too_big.status_code == 413
