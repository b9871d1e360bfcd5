"""The gateway's object graph, built once by `create_app` and handed to every handler."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..platform.client import Client, Submitted
from ..platform.deploy.model import Revision
from ..platform.store.connection import connect, connect_async
from ..platform.store.records import ExecutionState
from .auth import Authenticator
from .metrics import GatewayMetrics
from .requests import WaitRequest
from .settings import GatewaySettings
from .store import AsyncExecutions

log = structlog.get_logger("dolmen.gateway")


class Gateway:
    """Settings, store clients, auth and metrics of one gateway process."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        # Sync client for submits, listing and cancels (run in the thread pool);
        # params are bounded by the body limit already, so the client's own limit matches it.
        self.client = Client(
            connect(settings.redis_url, max_connections=128),
            max_params_bytes=settings.max_body_bytes,
            write_behind=True,
        )
        self.aredis = connect_async(settings.redis_url, max_connections=settings.redis_max_connections)
        self.executions = AsyncExecutions(self.aredis)
        self.auth = Authenticator(settings.tokens)
        self.metrics = GatewayMetrics()

    async def close(self) -> None:
        await self.aredis.aclose()
        self.client.close()

    async def revision(self) -> Revision:
        """The active revision (cached for half a second by the client)."""
        return await run_in_threadpool(self.client.revision)

    async def submit(self, ffqn: str, params: Any, *, key: str | None, raw_size: int, via: str) -> Submitted:
        """Validate and create an execution; counts the invocation by outcome."""
        try:
            submitted = await run_in_threadpool(
                lambda: self.client.submit(ffqn, params, idempotency_key=key, raw_size=raw_size)
            )
        except Exception:
            self.metrics.invocations.inc(via, "rejected")
            raise
        self.metrics.invocations.inc(via, "created" if submitted.created else "existing")
        return submitted

    async def settle(self, submitted: Submitted, wait: WaitRequest) -> ExecutionState | None:
        """Wait up to `wait` for the execution; its state when read, None if it was not read.

        A fresh execution with no wait is not read back: it is pending.
        """
        if wait.seconds <= 0 and submitted.created:
            return None
        state = await self.executions.wait_finished(submitted.execution_id, wait.seconds)
        if submitted.created and state.status == "finished" and state.finished_at:
            self.metrics.execution_durations.observe((state.finished_at - state.created_at) / 1000, state.kind)
        return state


def location(execution_id: str) -> str:
    return f"/v1/executions/{execution_id}"


def accepted(execution_id: str, status: str, *, wait: WaitRequest | None = None) -> JSONResponse:
    """202: the execution exists and runs; its URL is in Location."""
    return JSONResponse(
        {"execution_id": execution_id, "status": status},
        status_code=202,
        headers=_headers(execution_id, wait),
    )


def finished(state: ExecutionState, *, wait: WaitRequest | None = None) -> JSONResponse:
    """200: the finished execution, with its result or failure."""
    return JSONResponse(state.to_json(), status_code=200, headers=_headers(state.id, wait))


def _headers(execution_id: str, wait: WaitRequest | None) -> dict[str, str]:
    headers = {"Location": location(execution_id), "Dolmen-Execution-Id": execution_id}
    if wait is not None and wait.from_prefer:
        headers["Preference-Applied"] = f"wait={wait.seconds:g}" if wait.seconds > 0 else "respond-async"
    return headers


def handler(request: Request, name: str) -> None:
    """Name the handler of this request for the latency histogram."""
    request.state.handler = name
