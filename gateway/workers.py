"""`/v1/workers`: external workers claim executions of `kind: external` functions and settle them.

A worker needs an `invoke` token, as a system that supplies a stub's result
does: it runs the platform's functions, it does not administer the platform.
The logic lives in `platform.external`; here are the HTTP shapes only.

Every body is a JSON object (400 `bad_request` otherwise); a missing or
unknown token is a 401 `unauthorized`; a body over the limit a 413; 503 while
the store cannot be reached (with --wait-replicas, `replicas_unconfirmed`
after a write). Leases are in ms, waits in seconds, times in answers RFC 3339
(`iso_ms`).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..platform.external import MAX_CLAIM, Task, check_claimed, lease_ms_of
from ..platform.times import iso_ms
from .graph import Gateway, handler
from .decoding import execution_id_param
from .errors import BadRequestError
from .requests import check_query, object_body, read_body

DEFAULT_LEASE_MS = 30_000
# A claim waits at most this long for work (long-poll), whatever it asks.
MAX_WAIT_S = 60.0
# One blocking read of the queues: between two, a claim notices a client that went away.
_READ_SLICE_S = 1.0
# Claims that wait in a blocking read at once: each holds a thread of the pool the gateway's other
# synchronous work shares (40 by default). Further waiting claims look every `_POLL_S` instead.
MAX_BLOCKING_CLAIMS = 8
_POLL_S = 0.2
_WORKER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
# The body of each endpoint, for the message that refuses another: JSON objects (no body at all is `{}`).
_BODIES = {
    "claim": 'an object such as {"ffqns": ["ns:pkg/ifc@1.0.0.fn"], "max": 1, "wait_s": 10}',
    "heartbeat": 'an object such as {"token": "...", "lease_ms": 30000}',
    "complete": 'an object such as {"token": "...", "result": ...}',
    "fail": 'an object such as {"token": "...", "error": "what failed", "retryable": true}',
}


class WorkersApi:
    """`POST /v1/workers/claim` and `POST /v1/workers/tasks/{id}/(heartbeat|complete|fail)`."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._blocking = asyncio.Semaphore(MAX_BLOCKING_CLAIMS)

    def routes(self) -> list[BaseRoute]:
        """The `/v1/workers` routes."""
        return [
            Route("/v1/workers/claim", self.claim, methods=["POST"]),
            Route("/v1/workers/tasks/{id}/heartbeat", self.heartbeat, methods=["POST"]),
            Route("/v1/workers/tasks/{id}/complete", self.complete, methods=["POST"]),
            Route("/v1/workers/tasks/{id}/fail", self.fail, methods=["POST"]),
        ]

    async def _body(self, request: Request, name: str) -> dict[str, Any]:
        handler(request, f"workers_{name}")
        self.gw.auth.check(request, "invoke")
        check_query(request)
        return object_body(await read_body(request, self.gw.settings.max_body_bytes), None, shape=_BODIES[name])

    async def claim(self, request: Request) -> Response:
        """Claim up to `max` attempts of the listed external functions, waiting up to `wait_s` for one.

        Body `{"ffqns": [...], "lease_ms": 30000, "max": 1 (to MAX_CLAIM), "wait_s": 0 (at most MAX_WAIT_S),
        "worker": NAME}`: 200 `{"tasks": [Task.to_json]}`, empty when none came in time. 400 `usage_error`
        (an ffqn not deployed as `kind: external`, `lease_ms` outside 500 to 3600000) or `bad_request`
        (`BadRequestError`: `max`, `wait_s`, `worker`); 404 `not_found` when nothing is deployed.
        """
        body = await self._body(request, "claim")
        ffqns = check_claimed(body.get("ffqns"), await self.gw.revision())
        lease_ms = lease_ms_of(body.get("lease_ms", DEFAULT_LEASE_MS))
        count = _integer(body.get("max", 1), "max", 1, MAX_CLAIM)
        wait_s = _seconds(body.get("wait_s", 0), "wait_s")
        worker = body.get("worker", "worker")
        if not isinstance(worker, str) or not _WORKER_NAME.match(worker):
            raise BadRequestError("worker: expected a name of 1 to 64 letters, digits, '.', '_' or '-'", path="worker")
        deadline = time.monotonic() + min(wait_s, MAX_WAIT_S)

        def claim(block_ms: int) -> Awaitable[list[Task]]:
            return run_in_threadpool(self.gw.tasks.claim, ffqns, worker=worker, lease_ms=lease_ms, count=count, block_ms=block_ms)

        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0 and not self._blocking.locked():
                async with self._blocking:
                    tasks = await claim(max(1, int(min(remaining, _READ_SLICE_S) * 1000)))
            else:
                tasks = await claim(0)
                if not tasks and remaining > 0:
                    await asyncio.sleep(min(remaining, _POLL_S))
            if tasks or time.monotonic() >= deadline or await request.is_disconnected():
                break
        return JSONResponse({"tasks": [task.to_json() for task in tasks]})

    async def heartbeat(self, request: Request) -> Response:
        """Extend a lease (409 `lease_lost` once it is not the worker's: taken over, finished, timed out, cancelled).

        Body `{"token", "lease_ms"}` (`lease_ms` optional: as claimed): 200 `{"execution_id", "lease": {"until"}}`.
        409 `lease_lost` with `reason` (taken_over, finished, retrying, timed_out, cancelled), `not_external`;
        400 `usage_error` (token, lease_ms) or `invalid_name`; 404 `not_found`.
        """
        body = await self._body(request, "heartbeat")
        execution_id = execution_id_param(request)
        lease_ms = lease_ms_of(body["lease_ms"]) if "lease_ms" in body else None
        until = await run_in_threadpool(self.gw.tasks.heartbeat, execution_id, body.get("token"), lease_ms)
        return JSONResponse({"execution_id": execution_id, "lease": {"until": iso_ms(until)}})

    async def complete(self, request: Request) -> Response:
        """The attempt's result, in the JSON form of the WIT result type (400 naming the bad field).

        Body `{"token", "result"}`: 200 `Settled.to_json` (`finished`, or `retrying` at `retry_at` for an `err`
        the policy retries). 400 `bad_request` (`BadRequestError`: no `result`), `invalid_value`, `usage_error`
        (token) or `invalid_name`; 404 `not_found`; 409 `lease_lost`, `not_external`; 413 `payload_too_large`.
        """
        body = await self._body(request, "complete")
        execution_id = execution_id_param(request)
        if "result" not in body:
            raise BadRequestError("result: missing; send the function's result (null for one that returns nothing)", path="result")
        settled = await run_in_threadpool(self.gw.tasks.complete, execution_id, body.get("token"), body["result"])
        await self.gw.confirm_worker_write(execution_id)
        return JSONResponse(settled.to_json())

    async def fail(self, request: Request) -> Response:
        """The attempt failed: retried per the function's retry policy unless `retryable` is false.

        Body `{"token", "error": MESSAGE (first 4000 characters kept), "retryable": true}`: 200 `Settled.to_json`.
        400 `bad_request` (`BadRequestError`: `error`, `retryable`), `usage_error` (token) or `invalid_name`;
        404 `not_found`; 409 `lease_lost`, `not_external`.
        """
        body = await self._body(request, "fail")
        execution_id = execution_id_param(request)
        error = body.get("error")
        if not isinstance(error, str) or not error:
            raise BadRequestError("error: expected a message saying what failed", path="error")
        retryable = body.get("retryable", True)
        if not isinstance(retryable, bool):
            raise BadRequestError("retryable: expected true or false", path="retryable")
        settled = await run_in_threadpool(
            lambda: self.gw.tasks.fail(execution_id, body.get("token"), error[:4000], retryable=retryable)
        )
        await self.gw.confirm_worker_write(execution_id)
        return JSONResponse(settled.to_json())


def _integer(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequestError(f"{name}: expected an integer from {low} to {high}, got {value!r}", path=name)
    return value


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadRequestError(f"{name}: expected a number of seconds >= 0, got {value!r}", path=name)
    return float(value)

