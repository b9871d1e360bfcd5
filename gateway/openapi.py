"""`GET /openapi.json`: OpenAPI 3.1 generated from the active revision's WIT signatures.

Every deployed function gets its own `POST /v1/functions/<ffqn>` operation
whose request body is its parameters' schema and whose 200 answer carries its
result's schema; every deployment route gets an operation with its path and
query parameters. The generic execution endpoints are described once.
"""

from __future__ import annotations

from typing import Any

from ..platform._version import __version__
from ..platform.model import FunctionRoute, Revision
from ..platform.priorities import CLASSES, DEFAULT
from ..platform.store.outcomes import OUTCOMES
from ..platform.store.records import STATUSES
from ..platform.tags import MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS
from ..platform.wit.types import OptionT, Prim, WitType
from .listing import SCAN_LIMIT
from .routes import PLACEHOLDER, RouteTable, wit_name
from .openapi_operations import operation_paths
from .openapi_outside import complete_operation, worker_paths
from .openapi_parts import ID, errors, every_fixed_operation_refuses, json_answer, ref
from .schema import Schema, json_schema, params_schema, result_schema

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
OUTCOME_TEXT = (
    "Only finished executions that ended so: ok (a value), err (the `err` case of a WIT result), continued (continued "
    "as new), failed (any failure) or one failure kind; with no status, or status=finished"
)
PARTIAL_TEXT = (
    f"true when the page holds fewer executions than `limit` because the gateway stopped after reading {SCAN_LIMIT:,} "
    "executions (a filter few pass); `next` searches on from there"
)


def _execution_schema(result: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["execution_id", "ffqn", "status", "component_digest", "created_at"],
        "properties": {
            "execution_id": {"type": "string"},
            "ffqn": {"type": "string"},
            "kind": {"type": "string", "enum": ["activity", "workflow", "stub", "external"]},
            "status": {"type": "string", "enum": ["pending", "running", "blocked", "finished"]},
            "component_digest": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": "string", "format": "date-time"},
            "attempt": {"type": "integer"},
            "params": {"type": "array"},
            "parent_id": {"type": "string"},
            "tags": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "KEY -> VALUE given at invocation, or inherited from the execution that started this one.",
            },
            "cancel_requested": {"type": "boolean"},
            "paused": {
                "type": "boolean",
                "description": "Paused: no runner takes it until POST /v1/executions/{id}/resume.",
            },
            "waiting_for": {
                "type": "string",
                "enum": ["result"],
                "description": "A stub execution (never run) waiting for its result: PUT /v1/executions/{id}/result",
            },
            "result": result,
            "failure": ref("Failure"),
            "continued_as": {"type": "string", "description": "A workflow that continued as new: the execution that took over."},
            "continued_from": {"type": "string", "description": "The execution this one continues (continue-as-new)."},
            "chain": {"type": "string", "description": "The first execution of this continue-as-new chain."},
            "chain_index": {"type": "integer", "description": "Position in the chain: 1 for the first continuation."},
        },
    }


def _components() -> dict[str, Any]:
    return {
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "path": {"type": ["string", "null"]},
                            "execution_id": {"type": "string"},
                        },
                    }
                },
            },
            "Failure": {
                "type": "object",
                "required": ["kind", "message"],
                "properties": {"kind": {"type": "string"}, "message": {"type": "string"}},
            },
            "Accepted": {
                "type": "object",
                "required": ["execution_id", "status"],
                "properties": {"execution_id": {"type": "string"}, "status": {"type": "string"}},
            },
            "Execution": _execution_schema({}),
            "Schedule": {
                "type": "object",
                "required": ["name", "function", "cron", "timezone", "params", "misfire", "last_fired", "next"],
                "properties": {
                    "name": {"type": "string"},
                    "function": {"type": "string"},
                    "cron": {"type": "string"},
                    "timezone": {"type": "string"},
                    "params": {"type": "array"},
                    "misfire": {"type": "string", "enum": ["run-once", "skip"]},
                    "last_fired": {"type": ["integer", "null"]},
                    "last_execution_id": {"type": ["string", "null"]},
                    "next": {"type": "array", "items": {"type": "integer"}},
                },
            },
            "Event": {
                "type": "object",
                "required": ["index", "type", "at"],
                "properties": {"index": {"type": "integer"}, "type": {"type": "string"}, "at": {"type": "integer"}},
            },
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    }


def _tag_param(description: str) -> dict[str, Any]:
    return {
        "name": "tag",
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z0-9_./-]+=.+$"}},
        "style": "form",
        "explode": True,
        "example": ["customer=acme"],
    }


_PRIORITY = {
    "name": "priority",
    "in": "query",
    "required": False,
    "description": "Its priority class: runners take higher classes first; what it starts has the same class",
    "schema": {"type": "string", "enum": list(CLASSES), "default": DEFAULT},
}
_ACCEPTED = {
    "description": "Accepted: the execution runs; poll its Location",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "The execution's URL"}},
    "content": {"application/json": {"schema": ref("Accepted")}},
}
_WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Seconds to wait for the execution to finish (capped by the gateway); also `Prefer: wait=N`",
    "schema": {"type": "number", "minimum": 0},
}
# The answer of a pause or resume, of an execution (`execution_id`) or of a function (`ffqn`).
_PAUSE_ANSWER: Schema = {
    "type": "object",
    "properties": {
        "execution_id": {"type": "string"},
        "ffqn": {"type": "string"},
        "chain": {"type": "string", "description": "The id asked for, when the chain it started is now elsewhere."},
        "pause": {"type": "string", "enum": ["done", "already"]},
        "resume": {"type": "string", "enum": ["done", "already"]},
        "queued": {"type": "boolean", "description": "Resumed with work to do: queued to run."},
    },
}


def _function_operation(route: FunctionRoute) -> dict[str, Any]:
    sig = route.signature
    return {
        "operationId": f"invoke {route.ffqn}",
        "summary": f"Invoke {route.ffqn}: {sig.wit()}",
        "tags": [route.ffqn.rpartition(".")[0]],
        "parameters": [
            _WAIT,
            {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}},
            _tag_param(
                f"Tag the execution KEY=VALUE (repeatable, at most {MAX_TAGS}); what it starts carries the same tags. "
                f"A key is 1-{MAX_TAG_KEY} of A-Z a-z 0-9 _ - . /, a value 1-{MAX_TAG_VALUE} characters"
            ),
            _PRIORITY,
        ],
        "requestBody": {
            "required": bool(sig.params),
            "content": {"application/json": {"schema": params_schema(sig)}},
        },
        "responses": {
            "200": json_answer(_execution_schema(result_schema(sig)), "Finished within the wait"),
            "202": _ACCEPTED,
            **errors(400, 401, 403, 404, 409, 413, 503, 507),
        },
    }


def _route_operation(table: RouteTable, index: int) -> tuple[str, str, dict[str, Any]]:
    route = table.routes[index]
    sig = route.function.signature
    method = route.spec.method.upper()
    parameters: list[dict[str, Any]] = [
        _param(name, ty, "path", required=True) for name, ty in sig.params if name in route.path_params
    ]
    rest = [(name, ty) for name, ty in sig.params if name not in route.path_params]
    operation: dict[str, Any] = {
        "operationId": f"route {method} {route.spec.path}",
        "summary": f"{method} {route.spec.path} -> {route.function.ffqn}",
        "tags": ["routes"],
    }
    if method in _BODY_METHODS:
        operation["requestBody"] = {
            "required": any(not isinstance(ty, OptionT) for _, ty in rest),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {name: json_schema(ty) for name, ty in rest},
                        "required": [name for name, ty in rest if not isinstance(ty, OptionT)],
                        "additionalProperties": False,
                    }
                }
            },
        }
    else:
        parameters += [_param(name, ty, "query", required=not isinstance(ty, OptionT)) for name, ty in rest]
    operation["parameters"] = parameters
    # As routes.route_result answers a failed execution: its kind is the error's `code`.
    operation["responses"] = {
        "200": json_answer(result_schema(sig), "The function's return value"),
        "202": _ACCEPTED,
        **errors(400, 401, 403, 404, 405, 413, 503, 507),
        "409": json_answer(
            ref("Error"),
            "The execution was cancelled (`code` `cancelled`), or its Idempotency-Key was used for another call "
            "(`conflict`)",
        ),
        "500": json_answer(ref("Error"), "The execution failed (`code` is the failure kind: trap, ...)"),
        "504": json_answer(ref("Error"), "The execution ran past its time limit (`code` `timeout`)"),
    }
    # Name placeholders as the parameters are named (`{order_id}` binds `order-id`).
    path = PLACEHOLDER.sub(lambda m: "{" + wit_name(m.group(1)) + "}", route.spec.path)
    return path, method.lower(), operation


def _param(name: str, ty: WitType, where: str, *, required: bool) -> dict[str, Any]:
    inner = ty.inner if isinstance(ty, OptionT) else ty
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "description": f"WIT type {ty.wit()}"}
    if isinstance(inner, Prim):
        param["schema"] = json_schema(inner)
    else:
        param["content"] = {"application/json": {"schema": json_schema(inner)}}
    return param


def build_openapi(revision: Revision, table: RouteTable, *, auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document (a JSON object) of this gateway for `revision`, its routes as `table` compiled them.

    `auth` adds the document-wide bearer security requirement (tokens are configured).
    """
    paths: dict[str, Any] = {}
    for ffqn, route in sorted(revision.functions().items()):
        if route.signature.unsupported_reason() is None:
            paths[f"/v1/functions/{ffqn}"] = {"post": _function_operation(route)}
    routed: set[str] = set()
    for index in range(len(table.routes)):
        path, method, operation = _route_operation(table, index)
        paths.setdefault(path, {})[method] = operation
        routed.add(path)
    paths.update(_static_paths())
    paths["/v1/executions/{id}/result"]["put"] = complete_operation(revision)
    paths.update(worker_paths(revision))
    paths.update(operation_paths())
    every_fixed_operation_refuses(paths, set(paths) - routed)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"Dolmen gateway: {revision.name} (revision {revision.number})",
            "version": __version__,
            "description": "Invoke deployed WebAssembly functions by name or through the deployment's routes.",
        },
        "paths": paths,
        "components": _components(),
    }
    if auth:
        doc["security"] = [{"bearer": []}]
    return doc


def _static_paths() -> dict[str, Any]:
    execution = json_answer(ref("Execution"), "The execution")
    return {
        "/v1/functions": {
            "get": {
                "operationId": "list functions",
                "responses": {"200": json_answer({"type": "object"}, "Every deployed function"), **errors(401, 404)},
            }
        },
        "/v1/schedules": {
            "get": {
                "operationId": "list schedules",
                "parameters": [{"name": "next", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
                "responses": {
                    "200": json_answer(
                        {
                            "type": "object",
                            "properties": {
                                "revision": {"type": "integer"},
                                "schedules": {"type": "array", "items": ref("Schedule")},
                            },
                        },
                        "The active revision's cron schedules with their last and next fire times (ms since the epoch)",
                    ),
                    **errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/executions": {
            "get": {
                "operationId": "list executions",
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": s}
                    for n, s in (
                        ("ffqn", {"type": "string"}),
                        ("status", {"type": "string", "enum": list(STATUSES)}),
                        ("outcome", {"type": "string", "enum": list(OUTCOMES), "description": OUTCOME_TEXT}),
                        ("digest", {"type": "string", "description": "Only executions pinned to this component: a whole digest, or a unique prefix of a deployed one (`sha256:` optional)"}),
                        ("root", {"type": "boolean", "description": "true: only executions no workflow started (the roots of the trees)"}),
                        ("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                        ("cursor", {"type": "string", "description": "A page's `next` (older executions) or `previous` (newer ones), as it is"}),
                    )
                ]
                + [_tag_param("Only executions with tag KEY=VALUE (repeatable: all must match; the first is the index read)")],
                "responses": {
                    "200": json_answer(
                        {
                            "type": "object",
                            "properties": {
                                "executions": {"type": "array", "items": ref("Execution")},
                                "next": {"type": ["string", "null"], "description": "The cursor of the older executions; null after the oldest"},
                                "previous": {"type": ["string", "null"], "description": "The cursor of the newer executions; null on the newest page"},
                                "partial": {"type": "boolean", "description": PARTIAL_TEXT},
                                "hint": {
                                    "type": "string",
                                    "description": "Only on a page that lists nothing, when the filters cannot match: "
                                    "`ffqn` names a function no stored deployment revision has (with close names), or "
                                    "two `tag` filters give one key different values",
                                },
                            },
                        },
                        "A page of executions, newest first",
                    ),
                    **errors(400, 401, 403),
                },
            }
        },
        "/v1/executions/{id}": {
            "get": {"operationId": "get execution", "parameters": [ID], "responses": {"200": execution, **errors(400, 404)}}
        },
        "/v1/executions/{id}/events": {
            "get": {
                "operationId": "get events",
                "parameters": [
                    ID,
                    {"name": "after", "in": "query", "required": False, "schema": {"type": "integer", "minimum": -1}},
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "Server-sent events: resume after this event index (`after` wins); not an integer: 400",
                        "schema": {"type": "integer", "minimum": -1},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The log as JSON, or live server-sent events with `Accept: text/event-stream`",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"events": {"type": "array", "items": ref("Event")}},
                                }
                            },
                            "text/event-stream": {"schema": {"type": "string"}},
                        },
                    },
                    **errors(400, 404),
                },
            }
        },
        "/v1/executions/{id}/children": {
            "get": {
                "operationId": "list children",
                "description": "The executions a workflow started, in submission order (at most 500); for a fork, `copied` lists the "
                "children it copied answered from its source and never created; `total` counts every child the log submitted.",
                "parameters": [ID],
                "responses": {
                    "200": json_answer(
                        {
                            "type": "object",
                            "properties": {
                                "execution_id": {"type": "string"},
                                "total": {"type": "integer"},
                                "children": {"type": "array", "items": ref("Execution")},
                                "copied": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "child_id": {"type": "string"},
                                            "original_id": {"type": "string", "description": "The source's child, empty if unknown"},
                                            "ffqn": {"type": "string"},
                                            "params": {},
                                            "response": {"type": "object", "description": "The copied response: `result` or `failure`"},
                                        },
                                    },
                                },
                            },
                        },
                        "The children's states",
                    ),
                    **errors(400, 404),
                },
            }
        },
        "/v1/executions/{id}/result": {
            "get": {
                "operationId": "get result",
                "parameters": [ID, _WAIT],
                "responses": {"200": execution, "202": _ACCEPTED, **errors(400, 404)},
            }
        },
        "/v1/executions/{id}/cancel": {
            "post": {
                "operationId": "cancel execution",
                "parameters": [ID],
                "responses": {
                    "200": json_answer({"type": "object"}, "Cancelled"),
                    "202": json_answer({"type": "object"}, "Cancellation requested"),
                    **errors(403, 404, 409, 503, 507),
                },
            }
        },
        **{
            f"/v1/executions/{{id}}/{action}": {
                "post": {
                    "operationId": f"{action} execution",
                    "description": description,
                    "parameters": [ID],
                    "responses": {
                        "200": json_answer(_PAUSE_ANSWER, f"{action.capitalize()}d, or it already was"),
                        **errors(403, 404, 409, 503),
                    },
                }
            }
            for action, description in (
                ("pause", "No runner takes it until it is resumed; what runs now finishes its step "
                 "(a workflow unloads at its next wait)."),
                ("resume", "Resumed; queued again when it has work (`queued`)."),
            )
        },
        **{
            f"/v1/functions/{{ffqn}}/{action}": {
                "post": {
                    "operationId": f"{action} function",
                    "description": description,
                    "parameters": [{"name": "ffqn", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": json_answer(_PAUSE_ANSWER, f"{action.capitalize()}d, or it already was"),
                        **errors(403, 404, 409, 503),
                    },
                }
            }
            for action, description in (
                ("pause", "Runners take no execution of this function, present or future, until it is resumed."),
                ("resume", "Runners take its executions again."),
            )
        },
        "/healthz": {"get": {"operationId": "health", "security": [], "responses": {"200": {"description": "OK"}}}},
        "/metrics": {"get": {"operationId": "metrics", "responses": {"200": {"description": "Prometheus text"}}}},
    }
