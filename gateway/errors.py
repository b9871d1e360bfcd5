"""HTTP errors: one JSON shape, one status per error category, never a stack trace.

Every error answer is ``{"error": {"code": ..., "message": ..., "path": ...}}``;
`path` names the bad field of a request when there is one.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..platform.errors import (
    ConfigError,
    ConflictError,
    DolmenError,
    LeaseLostError,
    NotFoundError,
    PayloadTooLargeError,
    ReplicaWaitError,
    StoreError,
    StoreFullError,
)

log = structlog.get_logger("dolmen.gateway")


class UnauthorizedError(DolmenError):
    """No bearer token, or one the gateway does not know."""

    code = "unauthorized"


class ForbiddenError(DolmenError):
    """A known token whose scope does not allow the request."""

    code = "forbidden"


class BadRequestError(DolmenError):
    """The HTTP request itself is malformed (bad JSON, a bad header or query value)."""

    code = "bad_request"


class MethodNotAllowedError(DolmenError):
    """The path exists but not with this method."""

    code = "method_not_allowed"


# Most specific first: PayloadTooLargeError is a UsageError, which is a ConfigError.
_STATUS: tuple[tuple[type[DolmenError], int], ...] = (
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (PayloadTooLargeError, 413),
    (MethodNotAllowedError, 405),
    (BadRequestError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ConfigError, 400),
    # Insufficient Storage: the store is full, nothing was written; it takes freeing memory, not waiting.
    (StoreFullError, 507),
    (StoreError, 503),
)


def status_for(exc: DolmenError) -> int:
    """The HTTP status that reports `exc` (RFC 9110 §15), by its class, most specific first.

    401 `UnauthorizedError`, 403 `ForbiddenError`, 413 `PayloadTooLargeError`, 405 `MethodNotAllowedError`,
    400 `BadRequestError`, 404 `NotFoundError`, 409 `ConflictError`, 400 any other `ConfigError` (`UsageError`,
    `InvalidNameError`, `InvalidValueError`, ...), 507 `StoreFullError` (Insufficient Storage, RFC 4918 §11.5),
    503 any other `StoreError` (`ReplicaWaitError` too); 500 for the rest.
    """
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(code: str, message: str, path: str | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error answer: `{"error": {"code", "message", "path", **extra}}` (`path` None when no field
    is to blame)."""
    return {"error": {"code": code, "message": message, "path": path, **extra}}


def error_response(
    status: int,
    code: str,
    message: str,
    path: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An error answer of `status` with `error_body`; a 401 also carries `WWW-Authenticate: Bearer realm="dolmen"`
    (RFC 6750 §3)."""
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="dolmen"'}
    return JSONResponse(error_body(code, message, path, **extra), status_code=status, headers=headers)


def _unconfirmed_response(exc: ReplicaWaitError) -> JSONResponse:
    """503: the write happened on its master, unconfirmed by its replicas; the execution's id when there is one."""
    # A second is about what a replica that fell behind or reconnects takes; the message says what is safe to retry.
    headers = {"Retry-After": "1"}
    extra: dict[str, Any] = {}
    execution_id = exc.details.get("execution_id")
    if isinstance(execution_id, str):
        headers["Dolmen-Execution-Id"] = execution_id
        extra["execution_id"] = execution_id
    return error_response(503, exc.code, exc.message, exc.path, headers=headers, **extra)


async def dolmen_error_handler(request: Request, exc: Exception) -> Response:
    """A DolmenError: its own code, message and path, with the status of `status_for` (logged when 5xx).

    A `ReplicaWaitError` answers 503 with `Retry-After: 1` (RFC 9110 §10.2.3) and, when the write created one,
    the execution's id (`Dolmen-Execution-Id` and `execution_id`); a `LeaseLostError` adds its `reason`; a
    `MethodNotAllowedError` carries `Allow` (RFC 9110 §15.5.6) from its `allow` detail.
    """
    if not isinstance(exc, DolmenError):  # pragma: no cover - registered for DolmenError only
        return await internal_error_handler(request, exc)
    status = status_for(exc)
    if status >= 500:
        log.warning("request failed", method=request.method, path=request.url.path, code=exc.code, error=exc.message)
    if isinstance(exc, ReplicaWaitError):
        return _unconfirmed_response(exc)
    if isinstance(exc, MethodNotAllowedError):
        # RFC 9110 §15.5.6: a 405 lists the methods the resource answers in `Allow`.
        allow = exc.details.get("allow")
        headers = {"Allow": allow} if isinstance(allow, str) else None
        return error_response(status, exc.code, exc.message, exc.path, headers=headers)
    if isinstance(exc, LeaseLostError):
        # A worker tells taken over, finished, timed out and cancelled apart without reading the message.
        return error_response(status, exc.code, exc.message, exc.path, reason=exc.details.get("reason"))
    return error_response(status, exc.code, exc.message, exc.path)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own HTTPExceptions (unknown path, wrong method) in the same JSON shape.

    Codes `not_found` (404, naming /openapi.json), `method_not_allowed` (405), `bad_request` (400), else
    `http_error` with the exception's status.
    """
    if not isinstance(exc, HTTPException):  # pragma: no cover
        return await internal_error_handler(request, exc)
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404:
        message = f"nothing at {request.method} {request.url.path}; GET /openapi.json lists the API"
    # Starlette's 405 carries `Allow` (RFC 9110 §15.5.6) in its headers: keep them.
    return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message, headers=dict(exc.headers or {}) or None)


async def internal_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered without one (500 `internal_error`)."""
    log.error("unexpected error", method=request.method, path=request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the gateway failed unexpectedly; its log has the details")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DolmenError: dolmen_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
