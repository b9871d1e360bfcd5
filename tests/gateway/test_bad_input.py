"""Bad input answered alike everywhere: unknown query parameters refused, errors naming the field, 405 with `Allow`
for a wrong method, and a `hint` on an empty listing whose filters can match nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.gateway.helpers import ACT, WF, GatewayThread
from tests.gateway.test_errors import assert_error

BAD_ID = "not-an-id"


@pytest.fixture(scope="module")
def serial_id(gateway: GatewayThread) -> str:
    """A finished `serial(3)` workflow with three children (one for the module)."""
    with gateway.client() as http:
        done = http.post(f"/v1/functions/{WF}.serial?wait=30", json={"n": 3}).json()
    assert done["result"] == 12
    return done["execution_id"]


@pytest.mark.parametrize(
    ("method", "path", "name", "takes"),
    [
        ("GET", "/v1/executions/{id}/children", "limit", "takes no query parameters"),
        ("GET", "/v1/executions/{id}", "wait", "takes no query parameters"),
        ("GET", "/v1/deployments", "bogus", "takes limit"),
        ("GET", "/v1/executions/{id}/events", "before", "takes after"),
        ("GET", "/v1/executions/{id}/result", "timeout", "takes wait"),
        ("GET", "/v1/functions", "x", "takes no query parameters"),
        ("GET", f"/v1/functions/{ACT}.double", "x", "takes no query parameters"),
        ("GET", "/v1/schedules", "count", "takes next"),
        ("POST", "/v1/executions/{id}/rerun", "force", "takes no query parameters"),
        ("POST", "/v1/executions/{id}/cancel", "x", "takes no query parameters"),
        ("POST", "/v1/workers/claim", "max", "takes no query parameters"),
        ("GET", "/openapi.json", "v", "takes no query parameters"),
        ("GET", "/metrics", "x", "takes no query parameters"),
    ],
)
def test_every_endpoint_refuses_an_unknown_query_parameter_naming_it(
    http: httpx.Client, serial_id: str, method: str, path: str, name: str, takes: str
) -> None:
    """As `GET /v1/executions?function=` always was: 400 `bad_request`, `path` the parameter, the accepted ones listed."""
    response = http.request(method, path.format(id=serial_id), params={name: "2"})
    message = assert_error(response, 400, "bad_request", name)
    assert f"unknown query parameter {name!r}; this endpoint {takes}" in message


def test_healthz_ignores_a_query_as_a_probe_may_add_one(http: httpx.Client) -> None:
    """A load balancer's probe with a cache-busting query still finds the gateway healthy."""
    response = http.get("/healthz", params={"probe": "1"})
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_children_refuses_limit_rather_than_answer_every_child(http: httpx.Client, serial_id: str) -> None:
    """`?limit=2` used to be ignored (all children answered); `total` and MAX_CHILDREN bound the answer instead."""
    assert_error(http.get(f"/v1/executions/{serial_id}/children?limit=2"), 400, "bad_request", "limit")
    assert http.get(f"/v1/executions/{serial_id}/children").json()["total"] == 3


def test_deployment_routes_still_bind_the_query_to_params(http: httpx.Client) -> None:
    """Pass-through as documented: a route's query parameters are function params, not refused as unknown."""
    response = http.get("/maybe/false", params={"wait": "1"})
    assert response.status_code == 400 and response.json()["error"]["path"] == "params.wait", response.text


def test_a_malformed_ffqn_or_execution_id_names_its_field(http: httpx.Client) -> None:
    assert_error(http.get("/v1/executions?ffqn=garbage"), 400, "invalid_name", "ffqn")
    assert_error(http.get("/v1/functions/garbage"), 400, "invalid_name", "ffqn")
    for path in (f"/v1/executions/{BAD_ID}", f"/v1/executions/{BAD_ID}/events", f"/v1/executions/{BAD_ID}/result"):
        assert_error(http.get(path), 400, "invalid_name", "id")
    assert_error(http.post(f"/v1/executions/{BAD_ID}/cancel"), 400, "invalid_name", "id")
    assert_error(http.post(f"/v1/executions/{BAD_ID}/rerun"), 400, "invalid_name", "id")


def test_a_bad_last_event_id_names_the_header_not_after(http: httpx.Client, serial_id: str) -> None:
    headers = {"Accept": "text/event-stream", "Last-Event-ID": "abc"}
    message = assert_error(http.get(f"/v1/executions/{serial_id}/events", headers=headers), 400, "bad_request", "Last-Event-ID")
    assert message == "the Last-Event-ID header must be an integer, got 'abc'"
    message = assert_error(http.get(f"/v1/executions/{serial_id}/events?after=x"), 400, "bad_request", "after")
    assert message == "the after query parameter must be an integer, got 'x'"


@pytest.mark.parametrize(
    ("body", "got"),
    [({"to": 5}, "to: expected a string, got 5;"), ({"to": ""}, "to: expected a digest, got an empty string;"), ({}, "to: missing;")],
)
def test_upgrade_check_says_what_is_wrong_with_to(http: httpx.Client, body: dict[str, object], got: str) -> None:
    message = assert_error(http.post(f"/v1/functions/{WF}.serial/upgrade-check", json=body), 400, "bad_request", "to")
    assert message.startswith(got), message


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/executions/{id}/rerun", "POST"),
        ("DELETE", "/v1/executions/{id}", "GET, HEAD"),
        ("POST", "/v1/deployments", "GET, HEAD"),
        ("GET", "/v1/workers/claim", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/v1/executions/{id}/result", "GET, HEAD, PUT"),
        ("PUT", "/double/3", "POST"),  # a deployment route
        # A function's POST-only actions, which GET /v1/functions/{ffqn:path} read as a malformed name (400),
        # and whose Allow listed that route's GET too.
        ("GET", f"/v1/functions/{ACT}.double/upgrade-check", "POST"),
        ("PUT", f"/v1/functions/{ACT}.double/upgrade-check", "POST"),
        ("DELETE", f"/v1/functions/{ACT}.double/pause", "POST"),
        ("GET", f"/v1/functions/{ACT}.double/pause", "POST"),
        ("GET", f"/v1/functions/{ACT}.double/resume", "POST"),
    ],
)
def test_a_wrong_method_is_405_with_allow(http: httpx.Client, serial_id: str, method: str, path: str, allow: str) -> None:
    """RFC 9110 §15.5.6, not a 404 "nothing at GET ..."."""
    response = http.request(method, path.format(id=serial_id))
    message = assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allow
    assert f"not {method}" in message


def test_an_ffqn_filter_no_revision_has_hints_close_names(http: httpx.Client) -> None:
    """The typo invoking answers with "did you mean": 200 and an empty page, with a `hint`."""
    body = http.get("/v1/executions", params={"ffqn": f"{ACT}.doubel"}).json()
    assert body["executions"] == []
    assert body["hint"].startswith(f"no stored deployment revision has the function {ACT}.doubel; did you mean ")
    assert f"{ACT}.double" in body["hint"]
    # A deployed function with no executions matching the other filters: no hint.
    quiet = http.get("/v1/executions", params={"ffqn": f"{ACT}.double", "tag": f"run={uuid.uuid4().hex}"}).json()
    assert quiet["executions"] == [] and "hint" not in quiet


def test_two_values_for_one_tag_key_hint_that_nothing_can_match(http: httpx.Client) -> None:
    run = uuid.uuid4().hex
    http.post(f"/v1/functions/{ACT}.double?wait=30&tag=run={run}", json=[1])
    body = http.get(f"/v1/executions?tag=run={run}&tag=run=other").json()
    assert body["executions"] == []
    assert body["hint"] == (
        f"tag=run={run} and tag=run=other give the key 'run' 2 values; a key has one value, so no execution can match"
    )
    assert "hint" not in http.get(f"/v1/executions?tag=run={run}").json()


def test_openapi_documents_the_400_405_and_the_listing_hint(http: httpx.Client) -> None:
    """Every API operation lists the 400 (a query parameter it does not take) and the 405 with `Allow`; the listing's
    answer has `hint`, the events operation the `Last-Event-ID` header."""
    doc = http.get("/openapi.json").json()
    fixed = {p: ops for p, ops in doc["paths"].items() if p.startswith("/v1/") or p in ("/healthz", "/metrics")}
    assert "/v1/executions/{id}/rerun" in fixed and "/healthz" in fixed
    for path, operations in fixed.items():
        for method, operation in operations.items():
            assert ({"405"} if path == "/healthz" else {"400", "405"}) <= set(operation["responses"]), (method, path)
            assert "Allow" in operation["responses"]["405"]["headers"], (method, path)
    listing = doc["paths"]["/v1/executions"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "hint" in listing["properties"]
    events = doc["paths"]["/v1/executions/{id}/events"]["get"]["parameters"]
    assert {"name": "Last-Event-ID", "in": "header"}.items() <= next(p for p in events if p["name"] == "Last-Event-ID").items()
