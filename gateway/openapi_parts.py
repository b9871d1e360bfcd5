"""Pieces every part of the OpenAPI document uses: schema references, JSON answers, error answers, the id parameter."""

from __future__ import annotations

from typing import Any

from .schema import Schema

# The `{id}` path parameter of the execution endpoints.
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def ref(name: str) -> Schema:
    """A reference to the schema `name` of the document's components."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: Schema, description: str) -> dict[str, Any]:
    """An answer with a JSON body of `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Any]:
    """The error answers of `statuses` (OpenAPI Response Objects by status text), each with the shared Error body
    and what it means here; KeyError for a status this module has no text for."""
    text = {
        400: "Bad request: bad JSON, a value that does not fit its WIT type, a malformed name, or a query parameter "
        "the endpoint does not take (`path` names it)",
        401: "Missing or unknown bearer token",
        403: "The token's scope does not allow this",
        404: "No such function or execution",
        405: "The path answers other methods only (`Allow` lists them)",
        409: "Conflict (an idempotency key reused with other params or tags, nothing left to cancel, "
        "a stub's result already recorded otherwise, or a finished execution or a stub to pause)",
        413: "Request body over the gateway's limit",
        503: "The store is unreachable",
        507: "The store is full (Valkey's maxmemory): nothing was written; free memory, then try again",
    }
    answers = {str(s): json_answer(ref("Error"), text[s]) for s in statuses}
    if "405" in answers:
        answers["405"]["headers"] = ALLOW_HEADER
    return answers


# RFC 9110 §15.5.6: a 405 names the methods the path answers.
ALLOW_HEADER = {"Allow": {"description": "The methods this path answers, e.g. `GET, HEAD`", "schema": {"type": "string"}}}


__all__ = ["ALLOW_HEADER", "ID", "errors", "json_answer", "ref"]


def every_fixed_operation_refuses(paths: dict[str, Any], fixed: set[str]) -> None:
    """Each operation of the `fixed` paths (the API's, not the deployment's) documents the 400 for a query parameter
    it does not take and the 405 (with `Allow`) for a method its path does not answer; `/healthz` ignores any
    query, so it has no 400."""
    for path in fixed:
        for operation in paths[path].values():
            responses = operation.setdefault("responses", {})
            for status, answer in errors(*((405,) if path == "/healthz" else (400, 405))).items():
                responses.setdefault(status, answer)
