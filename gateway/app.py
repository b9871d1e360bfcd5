"""The Starlette application: HTTP API v1, deployment routes, OpenAPI, metrics, dashboard.

Routing order: the fixed endpoints first (`/v1/...`, `/openapi.json`,
`/healthz`, `/metrics`, the dashboard at `/` and `/static/`), then every
other path goes to the deployment routes of the active revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..platform.errors import DolmenError
from ..platform.store.heartbeats import Heartbeat, read_metrics
from ..platform.metrics import merge_snapshots
from ..platform.store.connection import connect
from ..platform.store.counts import read_counts
from ..platform.store.topology import replica_shortfall, replicas_of_masters
from .api import ApiV1
from .graph import Gateway, handler, log
from .errors import EXCEPTION_HANDLERS, MethodNotAllowedError
from .metrics import store_metrics
from .openapi import build_openapi
from .operations import OperationsApi
from .requests import check_query
from .routes import DeploymentRoutes
from .workers import WorkersApi
from .settings import GatewaySettings

STATIC = Path(__file__).resolve().parent / "static"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class RequestTimer:
    """ASGI middleware: observe each request's time to response start (s), by handler and status class (`2xx`, ...).

    Into `GatewayMetrics.requests`; the handler is the name `graph.handler` gave the request (`other` when none).
    """

    def __init__(self, app: ASGIApp, gw: Gateway) -> None:
        self.app = app
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                name = state.get("handler", "other")
                code = f"{message['status'] // 100}xx"
                self.gw.metrics.requests.labels(name, code).observe(time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, timed_send)


async def _start_heartbeat(beat: Heartbeat, wait_replicas: int, retry_s: float = 2.0) -> None:
    while True:
        try:
            await run_in_threadpool(beat.start)
            break
        except DolmenError as exc:
            log.warning("gateway cannot report to the store yet; retrying", error=exc.message)
            await asyncio.sleep(retry_s)
    if wait_replicas > 0:
        # Not refused: replicas may be added later. `platform status` reports it as long as it lasts.
        try:
            found = await run_in_threadpool(replicas_of_masters, beat.client)
        except DolmenError as exc:
            log.warning("cannot count the masters' replicas for --wait-replicas", error=exc.message)
            return
        for problem in replica_shortfall(wait_replicas, found, "this gateway"):
            log.warning(problem)


def create_app(settings: GatewaySettings | str) -> Starlette:
    """Build the app for one Redis; all state lives there, so gateways scale out.

    A bare Redis URL is accepted for callers that need nothing else configured.
    Raises `ConfigError` for a malformed Redis URL and `StoreAccessError` when
    the store refuses this process (a store that cannot be reached is no error:
    the app serves, answering 503, until it is up). Besides the
    API (`api`, `operations`, `workers`) and the deployment routes (`routes`):
    - `GET /healthz`, open: 200 `{"status": "ok"}`, or 503 `{"status":
      "unhealthy", "redis": MESSAGE}` when the store does not answer PING;
    - `GET /openapi.json` (invoke token): the OpenAPI 3.1 document of the
      active revision (`openapi.build_openapi`); 404 `not_found` when nothing
      is deployed;
    - `GET /metrics` (admin token): the Prometheus text exposition format
      0.0.4 (`metrics.py`);
    - `GET /` and `/static/`: the dashboard, open.
    Errors answer in one JSON shape (`errors.py`); a missing or unknown token
    is a 401 `unauthorized`, a too small scope a 403 `forbidden` (`auth.py`).
    """
    if isinstance(settings, str):
        settings = GatewaySettings(redis_url=settings, data_dir=Path(".dolmen"))
    gw = Gateway(settings)
    api = ApiV1(gw)
    deployment_routes = DeploymentRoutes(gw)

    async def healthz(request: Request) -> Response:
        handler(request, "healthz")
        # Any query is ignored: a probe that adds one (a cache buster) must not see the platform as down.
        try:
            await gw.executions.ping()
        except DolmenError as exc:
            return JSONResponse({"status": "unhealthy", "redis": exc.message}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> Response:
        handler(request, "openapi")
        gw.auth.check(request, "invoke")
        check_query(request)
        table = await deployment_routes.table()
        revision = await gw.revision()
        return JSONResponse(build_openapi(revision, table, auth=gw.auth.enabled))

    async def metrics(request: Request) -> Response:
        handler(request, "metrics")
        gw.auth.check(request, "admin")
        check_query(request)
        try:
            ffqns = list((await gw.revision()).functions())
        except DolmenError:
            ffqns = []
        def render() -> bytes:
            redis = gw.client.redis
            shared = store_metrics(read_counts(redis, gw.client.executions.scripts.shards, ffqns))
            shared += merge_snapshots(read_metrics(redis))
            return gw.metrics.render(shared)

        return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)

    async def dashboard(request: Request) -> Response:
        handler(request, "dashboard")
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        details = {"wait_replicas": settings.wait_replicas} if settings.wait_replicas > 0 else {}
        beat = Heartbeat(connect(settings.redis_url), "gateway", lambda: details)
        # Subscribe to finish notifications before the first request waits on one.
        gw.executions.watcher.start()
        # Serve even while Redis is down (answering 503), and report once it is up.
        starting = asyncio.create_task(_start_heartbeat(beat, settings.wait_replicas))
        try:
            yield
        finally:
            starting.cancel()
            beat.stop()
            await gw.close()

    middleware = [Middleware(RequestTimer, gw=gw)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=ALL_METHODS,
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Prefer", "Last-Event-ID"],
                expose_headers=["Location", "Dolmen-Execution-Id", "Idempotent-Replayed", "Preference-Applied"],
            )
        )
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/", dashboard, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *OperationsApi(gw).routes(),
        *api.routes(),
        *WorkersApi(gw).routes(),
    ]
    routes.append(_catch_all(_wrong_method(list(routes), deployment_routes.handle)))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.gateway = gw
    return app


def _wrong_method(fixed: list[BaseRoute], handle: Any) -> Any:
    """`handle`, unless a fixed route has the path with other methods: then 405 `method_not_allowed` with `Allow`.

    The catch-all route takes every method, so Starlette's own 405 (a partial match) never came: a GET on
    `/v1/executions/{id}/rerun` went to the deployment routes and answered 404 (RFC 9110 §15.5.6 wants 405).
    """

    async def endpoint(request: Request) -> Response:
        allowed: set[str] = set()
        for route in fixed:
            if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] == Match.PARTIAL:
                allowed |= route.methods
        if allowed:
            handler(request, "method_not_allowed")
            methods = ", ".join(sorted(allowed))
            raise MethodNotAllowedError(f"{request.url.path} answers {methods}, not {request.method}", allow=methods)
        response: Response = await handle(request)
        return response

    return endpoint


def _catch_all(handle: Any) -> Route:
    """The route of every other path: the deployment's routes.

    Starlette compiles `{path:path}` as `.*` without DOTALL, so a path holding
    %0A matched nothing and was answered 404; with it, the deployment routes
    answer 400 naming the parameter that holds the line feed.
    """
    route = Route("/{path:path}", handle, methods=ALL_METHODS)
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route
