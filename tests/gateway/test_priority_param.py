"""`?priority=` on invocations over HTTP: recorded on the execution, refused when unknown, documented in OpenAPI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.gateway.helpers import ACT, GatewayThread
from tests.gateway.test_dashboard import chromium
from tests.gateway.test_errors import assert_error


def test_an_invocation_carries_its_priority_class(http: httpx.Client) -> None:
    done = http.post(f"/v1/functions/{ACT}.double?priority=high&wait=30", json=[4]).json()
    assert done["status"] == "finished" and done["result"] == 8
    events = http.get(f"/v1/executions/{done['execution_id']}/events").json()["events"]
    assert events[0]["type"] == "created" and events[0]["priority"] == "high"
    normal = http.post(f"/v1/functions/{ACT}.double?wait=30", json=[1]).json()
    events = http.get(f"/v1/executions/{normal['execution_id']}/events").json()["events"]
    assert "priority" not in events[0]  # the default is not written


def test_an_unknown_priority_class_is_refused_naming_the_classes(http: httpx.Client) -> None:
    message = assert_error(http.post(f"/v1/functions/{ACT}.double?priority=urgent", json=[4]), 400, "usage_error", "priority")
    assert message == "priority must be one of high, normal, low; got 'urgent'"


def test_a_misspelt_or_repeated_query_parameter_is_refused_naming_it(http: httpx.Client) -> None:
    """`?priorty=high` must not pass unseen as a normal invocation, nor `?priority=high&priority=low` pick one."""
    message = assert_error(http.post(f"/v1/functions/{ACT}.double?priorty=high", json=[4]), 400, "bad_request", "priorty")
    assert message == "unknown query parameter 'priorty'; this endpoint takes wait, tag, priority (params go in the body)"
    twice = http.post(f"/v1/functions/{ACT}.double?priority=high&priority=low", json=[4])
    assert assert_error(twice, 400, "bad_request", "priority") == "the query parameter 'priority' is given twice; give it once"
    assert http.post(f"/v1/functions/{ACT}.double?tag=a=1&tag=b=2&wait=30", json=[4]).json()["result"] == 8


def test_openapi_documents_the_priority_parameter(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    invoke = spec["paths"][f"/v1/functions/{ACT}.double"]["post"]
    (param,) = [p for p in invoke["parameters"] if p["name"] == "priority"]
    assert param["in"] == "query" and param["schema"]["enum"] == ["high", "normal", "low"]


@pytest.mark.browser
def test_the_dashboard_shows_an_execution_s_priority(gateway: GatewayThread, http: httpx.Client, tmp_path: Path) -> None:
    """In headless Chromium, the detail of a high-priority execution names its class."""
    execution_id = http.post(f"/v1/functions/{ACT}.double?priority=high&wait=30", json=[2]).json()["execution_id"]
    assert http.get(f"/v1/executions/{execution_id}").json()["priority"] == "high"
    dom = chromium(f"{gateway.url}/#{execution_id}", tmp_path, "--dump-dom").stdout
    assert f'<code id="detail-id">{execution_id}</code>' in dom
    assert "<dt>Priority</dt><dd>high</dd>" in dom
