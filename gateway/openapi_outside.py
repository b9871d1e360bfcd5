"""OpenAPI operations for results that come from outside: a stub's result, and external workers' claims and writes."""

from __future__ import annotations

from typing import Any

from ..platform.model import Revision
from .openapi_parts import ID, errors, json_answer, ref
from .schema import result_schema


def complete_operation(revision: Revision) -> dict[str, Any]:
    """`PUT /v1/executions/{id}/result`: the body is the result of one of the deployed stub functions."""
    stubs = [(ffqn, r) for ffqn, r in sorted(revision.functions().items()) if r.kind == "stub"]
    results = [{**result_schema(r.signature), "title": ffqn} for ffqn, r in stubs if r.signature.unsupported_reason() is None]
    listed = ", ".join(ffqn for ffqn, _ in stubs) or "none in this revision"
    return {
        "operationId": "complete stub execution",
        "summary": "Supply the result of a stub execution (a function deployed as `kind: stub`), which finishes it",
        "description": (
            "The body is the result in the JSON form of the function's WIT result type, as `GET` shows it "
            "(a WIT `result` as {\"ok\": ...} or {\"err\": ...}); it is checked against that type (400 names the "
            "bad field) and recorded once: the same value again answers 200 with `Idempotent-Replayed: true`, another "
            "one 409 (code `result_recorded`), an execution that is not a stub 409 (code `not_a_stub`). "
            f"Stub functions deployed: {listed}."
        ),
        "parameters": [ID],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"anyOf": results} if results else {}}},
        },
        "responses": {
            "200": json_answer(ref("Execution"), "The finished stub execution"),
            **errors(400, 401, 403, 404, 409, 413, 503, 507),
        },
    }


def worker_paths(revision: Revision) -> dict[str, Any]:
    """`/v1/workers`: external workers claim executions of `kind: external` functions and settle them (gateway/workers.py)."""
    external = [(ffqn, r) for ffqn, r in sorted(revision.functions().items()) if r.kind == "external"]
    results = [{**result_schema(r.signature), "title": ffqn} for ffqn, r in external if r.signature.unsupported_reason() is None]
    listed = ", ".join(ffqn for ffqn, _ in external) or "none in this revision"
    token = {"type": "string", "description": "The lease's token from the claim, as it came"}
    lost = "409: the lease is lost (code `lease_lost`, `reason` taken_over, finished, retrying, timed_out or cancelled)"
    task = {
        "type": "object",
        "properties": {
            "execution_id": {"type": "string"},
            "ffqn": {"type": "string"},
            "params": {"type": "array", "description": "Positional, in the JSON form of their WIT types"},
            "attempt": {"type": "integer"},
            "timeout_at": {"type": "string", "format": "date-time"},
            "lease": {
                "type": "object",
                "properties": {"owner": {"type": "string"}, "version": {"type": "integer"}, "token": token, "until": {"type": "string", "format": "date-time"}},
            },
        },
    }
    settled = json_answer(
        {"type": "object", "properties": {"execution_id": {"type": "string"}, "status": {"enum": ["finished", "retrying"]}, "retry_at": {"type": "string"}}},
        "Written: the execution finished, or another attempt is due at `retry_at`",
    )

    def write(operation_id: str, summary: str, body: dict[str, Any], required: list[str], ok: dict[str, Any]) -> dict[str, Any]:
        schema = {"type": "object", "required": required, "properties": body}
        return {
            "post": {
                "operationId": operation_id,
                "summary": summary,
                "description": lost,
                "parameters": [ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
                "responses": {"200": ok, **errors(400, 401, 403, 404, 409, 413, 503)},
            }
        }

    claim = {
        "ffqns": {"type": "array", "items": {"type": "string"}, "description": f"Functions of kind external: {listed}"},
        "lease_ms": {"type": "integer", "minimum": 500, "maximum": 3_600_000, "default": 30_000},
        "max": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
        "wait_s": {"type": "number", "minimum": 0, "default": 0, "description": "Long-poll up to this long (at most 60)"},
        "worker": {"type": "string", "description": "A name for the worker, part of the lease's owner"},
    }
    return {
        "/v1/workers/claim": {
            "post": {
                "operationId": "claim external executions",
                "summary": "Lease executions of external functions: those whose lease expired first, then new ones",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["ffqns"], "properties": claim}}}},
                "responses": {
                    "200": json_answer({"type": "object", "properties": {"tasks": {"type": "array", "items": task}}}, "The claimed tasks (none after wait_s)"),
                    **errors(400, 401, 403, 503),
                },
            }
        },
        "/v1/workers/tasks/{id}/heartbeat": write(
            "heartbeat external execution",
            "Extend the lease (by lease_ms, else as long as claimed)",
            {"token": token, "lease_ms": {"type": "integer"}},
            ["token"],
            json_answer({"type": "object"}, "The lease's new end"),
        ),
        "/v1/workers/tasks/{id}/complete": write(
            "complete external execution",
            "The attempt's result in the JSON form of the WIT result type (checked: 400 names the bad field)",
            {"token": token, "result": {"anyOf": results} if results else {}},
            ["token", "result"],
            settled,
        ),
        "/v1/workers/tasks/{id}/fail": write(
            "fail external execution",
            "The attempt failed: retried per the function's retry policy, unless retryable is false",
            {"token": token, "error": {"type": "string"}, "retryable": {"type": "boolean", "default": True}},
            ["token", "error"],
            settled,
        ),
    }


__all__ = ["complete_operation", "worker_paths"]
