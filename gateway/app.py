"""The Starlette application: HTTP API v1, deployment routes, dashboard."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..platform.heartbeat import Heartbeat
from ..platform.store.connection import connect, connect_async


def create_app(redis_url: str) -> Starlette:
    """Build the app for one Redis; all state lives there, so gateways scale out."""
    client = connect_async(redis_url)

    async def healthz(request: Request) -> JSONResponse:
        try:
            await client.ping()  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return JSONResponse({"status": "unhealthy", "redis": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        beat = Heartbeat(connect(redis_url), "gateway").start()
        try:
            yield
        finally:
            beat.stop()
            await client.aclose()

    return Starlette(routes=[Route("/healthz", healthz)], lifespan=lifespan)
