"""OpenAPI operations of the admin endpoints in operations.py: deployments, rerun, fork and the upgrade check."""

from __future__ import annotations

from typing import Any

from .openapi_parts import ID, errors, json_answer, ref

_CREATED_HEADERS = {"Location": {"schema": {"type": "string"}, "description": "The new execution's URL"}}


def _json_body(properties: dict[str, Any], required: list[str], *, optional: bool = False) -> dict[str, Any]:
    """A JSON object body; `optional`: no body at all is taken as `{}` (never `null`, which is refused)."""
    schema = {"type": "object", "required": required, "properties": properties, "additionalProperties": False}
    return {"required": not optional, "content": {"application/json": {"schema": schema}}}


def _refused(description: str) -> dict[str, Any]:
    """The 400 of an operation, with which code answers what."""
    return {"400": json_answer(ref("Error"), description)}


def operation_paths() -> dict[str, Any]:
    """The paths of `OperationsApi`; every one needs an admin token when tokens are configured."""
    revision = {
        "type": "object",
        "properties": {
            "revision": {"type": "integer"},
            "name": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "active": {"type": "boolean"},
            "components": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "digest": {"type": "string"},
                        "functions": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }
    version = {
        "type": "object",
        "description": "One digest of one function: its unfinished executions, as `platform versions` shows them",
        "properties": {
            "ffqn": {"type": "string"},
            "digest": {"type": "string"},
            "unfinished": {"type": "integer"},
            "revisions": {"type": "array", "items": {"type": "integer"}},
            "components": {"type": "array", "items": {"type": "string"}},
            "active": {"type": "boolean", "description": "The active revision routes new executions of the function here"},
        },
    }
    return {
        "/v1/deployments": {
            "get": {
                "operationId": "list deployments",
                "parameters": [{"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}}],
                "responses": {
                    "200": json_answer(
                        {
                            "type": "object",
                            "properties": {
                                "active": {"type": ["integer", "null"]},
                                "revisions": {"type": "array", "items": revision},
                                "versions": {"type": "array", "items": version},
                            },
                        },
                        "Revisions newest first, and which digests run which functions",
                    ),
                    **errors(400, 401, 403, 503),
                },
            }
        },
        "/v1/executions/{id}/rerun": {
            "post": {
                "operationId": "rerun execution",
                "description": "A new execution of the same function with the same params and tags, on the deployed version (`platform rerun`).",
                "parameters": [ID],
                "requestBody": _json_body({}, [], optional=True),
                "responses": {
                    "201": {**json_answer({"type": "object"}, "Started: `execution_id`, `rerun_of`, `component_digest`, `revision`"), "headers": _CREATED_HEADERS},
                    **errors(401, 403, 404, 503, 507),
                    **_refused("`bad_request`: a field, or a body that is not an object (`null` included; `path: body`)"),
                },
            }
        },
        "/v1/executions/{id}/fork": {
            "post": {
                "operationId": "fork execution",
                "description": "A new workflow execution from a copy of the first `at` events of this one's log, replay-checked first (`platform fork`).",
                "parameters": [ID],
                "requestBody": _json_body({"at": {"type": "integer", "minimum": 1}}, ["at"]),
                "responses": {
                    "201": {**json_answer({"type": "object"}, "Started: `execution_id`, `forked_from`, `at`, `events_copied`, ..."), "headers": _CREATED_HEADERS},
                    **errors(401, 403, 404, 503, 507),
                    **_refused(
                        "`bad_request`: a body that is not `{\"at\": integer}` (not an object, `null` included, another "
                        "field, `at` missing or not an integer; `path` names it). `usage_error`: what the fork refuses for "
                        "this execution, as upgrade-check does: an `at` outside 1..N for its log (`path: at`, the message "
                        "gives N), an activity, or a copied prefix that does not replay (`path: at`)"
                    ),
                },
            }
        },
        "/v1/functions/{ffqn}/upgrade-check": {
            "post": {
                "operationId": "check upgrade",
                "description": (
                    "A dry run of `platform upgrade FFQN --to DIGEST`: every running execution of the workflow on "
                    "another digest is replayed on DIGEST and reported (`would-upgrade`, `would-reject` with the "
                    "divergence; `kept` when it stays without a replay: rejected for DIGEST before, `detail` "
                    "`rejected earlier: ...`, or a `pinned` upgrade policy; `busy`, `moved` already on DIGEST, "
                    "`finished`); nothing is written."
                ),
                "parameters": [{"name": "ffqn", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": _json_body({"to": {"type": "string", "description": "A deployed workflow component's digest, or a unique prefix"}}, ["to"]),
                "responses": {
                    "200": json_answer({"type": "object"}, "`dry_run`, the change (`ffqn`, `to_digest`, ...) and `executions` [{execution_id, from, outcome, detail, verdict}]"),
                    **errors(401, 403, 404, 503),
                    **_refused(
                        "`bad_request`: a body that is not `{\"to\": DIGEST}` (not an object, `null` included, another "
                        "field, `to` missing or not a string). `usage_error`: a component that does not export the "
                        "workflow or a prefix of several (`path: to`), or a function that is an activity"
                    ),
                },
            }
        },
    }
