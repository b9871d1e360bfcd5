"""/openapi.json: a valid OpenAPI 3.1 document that matches the deployed functions and routes."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from dolmen.platform.cron import CronState, Schedule, describe

from tests.gateway.helpers import ACT, ROUTES, WF


def schema_of(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema of `doc`, resolving its #/components references."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def test_openapi_validates(http: httpx.Client) -> None:
    """The document passes openapi-spec-validator (OpenAPI 3.1)."""
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_openapi_has_one_operation_per_function_and_route(http: httpx.Client) -> None:
    """Every deployed function has its POST operation and every route its method and path."""
    doc = http.get("/openapi.json").json()
    functions = http.get("/v1/functions").json()["functions"]
    for function in functions:
        assert "post" in doc["paths"][f"/v1/functions/{function['ffqn']}"], function["ffqn"]
    for route in ROUTES:
        assert route.method.lower() in doc["paths"][route.path], route
    for path in ("/v1/executions", "/v1/executions/{id}", "/v1/executions/{id}/events", "/v1/executions/{id}/result"):
        assert path in doc["paths"]


def test_function_schemas_accept_what_the_gateway_accepts(http: httpx.Client) -> None:
    """The params and result schemas of `slow` and `maybe` agree with the codec's JSON forms."""
    doc = http.get("/openapi.json").json()
    slow = doc["paths"][f"/v1/functions/{ACT}.slow"]["post"]
    params = schema_of(doc, slow["requestBody"]["content"]["application/json"]["schema"])
    assert params.is_valid({"ms": 5, "tag": "t"})
    assert params.is_valid([5, "t"])
    assert not params.is_valid({"ms": 5})
    assert not params.is_valid({"ms": -1, "tag": "t"})
    assert not params.is_valid({"ms": 5, "tag": "t", "extra": 1})
    assert not params.is_valid([5])
    maybe = doc["paths"][f"/v1/functions/{ACT}.maybe"]["post"]
    finished = maybe["responses"]["200"]["content"]["application/json"]["schema"]
    result = schema_of(doc, finished["properties"]["result"])
    assert result.is_valid({"ok": 7})
    assert result.is_valid({"err": "no"})
    assert not result.is_valid({"ok": "7"})
    assert not result.is_valid(7)


def test_real_answers_match_their_documented_schemas(http: httpx.Client) -> None:
    """A finished execution of `serial` validates against the 200 schema of its operation."""
    doc = http.get("/openapi.json").json()
    operation = doc["paths"][f"/v1/functions/{WF}.serial"]["post"]
    body = http.post(f"/v1/functions/{WF}.serial?wait=30", json={"n": 2}).json()
    assert body["status"] == "finished" and body["result"] == 6
    schema_of(doc, operation["responses"]["200"]["content"]["application/json"]["schema"]).validate(body)
    accepted = http.post(f"/v1/functions/{WF}.serial", json={"n": 2}).json()
    assert accepted["execution_id"].startswith("E_")
    schema_of(doc, operation["responses"]["202"]["content"]["application/json"]["schema"]).validate(accepted)


def test_route_operations_document_path_and_query_params(http: httpx.Client) -> None:
    """A GET route lists its path params and its other params as query params, typed."""
    doc = http.get("/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/slow"]["get"]["parameters"]}
    assert params["ms"]["in"] == "query"
    assert params["ms"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
    assert params["tag"]["required"] is True
    double = doc["paths"]["/double/{x}"]["post"]["parameters"]
    assert double == [{"name": "x", "in": "path", "required": True, "description": "WIT type u64",
                       "schema": {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}}]  # fmt: skip
    body = doc["paths"]["/slow/{tag}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == ["ms"]


def test_schedules_are_listed_and_match_their_schema(http: httpx.Client) -> None:
    """GET /v1/schedules answers the active revision's schedules (none here); a listed one fits the Schedule schema."""
    doc = http.get("/openapi.json").json()
    assert "get" in doc["paths"]["/v1/schedules"]
    listing = http.get("/v1/schedules").json()
    assert listing["schedules"] == [] and isinstance(listing["revision"], int)
    assert http.get("/v1/schedules?next=0").status_code == 400
    one = describe(Schedule("n", f"{ACT}.double", "*/5 * * * *", "Europe/Paris", [21]), CronState(0, 5, 5), 1_000_000, 2)
    schema_of(doc, doc["components"]["schemas"]["Schedule"]).validate(one)
    assert len(one["next"]) == 2 and one["last_execution_id"].startswith("E_")
