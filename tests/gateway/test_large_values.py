"""Large params and results over HTTP: up to the value limit they work, params past it answer 413 naming it."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx

from dolmen.platform.wit.limits import DEFAULT_MAX_VALUE_BYTES
from tests.gateway.helpers import ACT, GatewayThread, Platform, gateway_process
from tests.gateway.test_errors import assert_error

LIMIT = DEFAULT_MAX_VALUE_BYTES


def test_a_string_near_the_limit_round_trips_over_http(http: httpx.Client) -> None:
    """A 4 MiB string goes in as a param and comes back as the result, in the answer and the event log."""
    tag = "x" * (LIMIT - 16)  # the params [0,"x..."] are 6 bytes more
    answer = http.post(f"/v1/functions/{ACT}.slow?wait=60", json={"ms": 0, "tag": tag})
    assert answer.status_code == 200, answer.text[:300]
    execution = answer.json()
    assert execution["result"] == tag
    events = http.get(f"/v1/executions/{execution['execution_id']}/events").json()
    assert [e["result"] for e in events["events"] if e["type"] == "finished"] == [tag]
    assert events["events"][0]["params"] == [0, tag]


def test_params_over_the_limit_answer_413_naming_the_limit(http: httpx.Client) -> None:
    """Params whose JSON is over the default limit (inside the body limit) are refused before anything is created."""
    answer = http.post(f"/v1/functions/{ACT}.slow", json={"ms": 0, "tag": "x" * (5 * 1024 * 1024)})
    message = assert_error(answer, 413, "payload_too_large")
    assert message == (
        f"the JSON of the params is {5 * 1024 * 1024 + 6} bytes, over the limit of {LIMIT} bytes for one value; "
        "pass large data by reference (e.g. a URL), or raise DOLMEN_MAX_VALUE_BYTES on the gateways and runners"
    )


def test_a_gateway_with_a_lower_limit_refuses_params_past_it(start_gateway: Callable[..., GatewayThread]) -> None:
    """The value limit is the gateway's setting: deployment routes and ffqn calls both apply it."""
    server = start_gateway(max_value_bytes=1000)
    with server.client() as http:
        small = http.post(f"/v1/functions/{ACT}.slow", json={"ms": 0, "tag": "x" * 900})
        assert small.status_code == 202, small.text
        by_ffqn = http.post(f"/v1/functions/{ACT}.slow", json={"ms": 0, "tag": "x" * 2000})
        assert "over the limit of 1000 bytes for one value" in assert_error(by_ffqn, 413, "payload_too_large")
        by_route = http.post(f"/slow/{'x' * 2000}?ms=0")
        assert "over the limit of 1000 bytes for one value" in assert_error(by_route, 413, "payload_too_large")


def test_platform_gateway_takes_the_limit_and_its_body_limit_from_the_environment(platform: Platform) -> None:
    """`DOLMEN_MAX_VALUE_BYTES` sets the value limit of `platform gateway`, and its body limit follows at twice it."""
    env = {**os.environ, "DOLMEN_MAX_VALUE_BYTES": "2000"}
    with gateway_process(platform, env=env) as url, httpx.Client(base_url=url, trust_env=False, timeout=30) as http:
        over_value = http.post(f"/v1/functions/{ACT}.slow", json={"ms": 0, "tag": "x" * 3000})
        assert "over the limit of 2000 bytes for one value" in assert_error(over_value, 413, "payload_too_large")
        over_body = http.post(f"/v1/functions/{ACT}.slow", json={"ms": 0, "tag": "x" * 5000})
        message = assert_error(over_body, 413, "payload_too_large")
        assert "over this gateway's limit of 4000 bytes" in message and "--max-body-bytes" in message
