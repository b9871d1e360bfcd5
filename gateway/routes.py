"""Deployment routes: `METHOD /path/{param}` bound to a function by the active revision.

Path parameters, query parameters and the fields of a JSON object body bind
to the function's parameters by name (`order_id` also binds `order-id`, since
WIT names are kebab-case). Text from the path and the query is percent-decoded
as UTF-8 (`decoding.py`: a byte that is not UTF-8 is a 400 naming the
parameter) and converted by the parameter's WIT type (`convert.py`). The answer
is the function's return value once it finishes, within the route wait
(`Prefer: wait=N` changes it, `Prefer: respond-async` skips it), else 202 with
the execution id.

The table is rebuilt whenever another revision becomes active, so a deploy
changes the routes of every running gateway within a second.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..platform.model import FunctionRoute, Revision, RouteSpec
from ..platform.errors import InvalidValueError, NotFoundError
from ..platform.store.records import ExecutionState
from ..platform.wit.types import FunctionType
from .graph import Gateway, accepted, handler, location, progress
from .convert import from_texts
from .decoding import decoded_path, decoded_segments, query_items, require_name, require_utf8
from .errors import MethodNotAllowedError, error_response
from .requests import idempotency_key, object_body, read_body, wait_time

log = structlog.get_logger("dolmen.gateway")

PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# How a failed execution is answered on a route.
_FAILURE_STATUS = {"timeout": 504, "cancelled": 409}
# What a route's body holds, for the message that refuses another JSON document.
ROUTE_BODY = "an object whose fields are parameters (those the path and query do not give), or no body"


def wit_name(name: str) -> str:
    """A parameter name as WIT writes it (kebab-case)."""
    return name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route whose template is one regex per path segment and whose function is resolved.

    Matching goes segment by segment over the path as sent, each segment
    percent-decoded on its own: `/files/a%2Fb` gives `{name}` the value
    `a/b` (decoding the whole path first would make it two segments).
    """

    spec: RouteSpec
    segments: tuple[re.Pattern[str], ...]
    path_params: tuple[str, ...]
    function: FunctionRoute

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path parameters if the decoded `segments` (of a path split on '/') match, else None."""
        if len(segments) != len(self.segments):
            return None
        found: dict[str, str] = {}
        for pattern, segment in zip(self.segments, segments):
            matched = pattern.fullmatch(segment)
            if matched is None:
                return None
            found.update(matched.groupdict())
        return {name: found[f"p{i}"] for i, name in enumerate(self.path_params)}


def compile_route(spec: RouteSpec, functions: dict[str, FunctionRoute]) -> CompiledRoute:
    """Check a route against the revision's functions and compile its template; ValueError says why not.

    Why not: a method outside METHODS, a path not starting with '/', a function not deployed, a placeholder
    that names none of its parameters or appears twice, an unbalanced brace.
    """
    if spec.method.upper() not in METHODS:
        raise ValueError(f"method {spec.method!r} is not one of {', '.join(sorted(METHODS))}")
    if not spec.path.startswith("/"):
        raise ValueError(f"path {spec.path!r} must start with '/'")
    function = functions.get(spec.function)
    if function is None:
        raise ValueError(f"function {spec.function} is not deployed in this revision")
    names = {n for n, _ in function.signature.params}
    params: list[str] = []
    segments: list[re.Pattern[str]] = []
    for template in spec.path.split("/"):
        pattern, last = "", 0
        for found in PLACEHOLDER.finditer(template):
            name = wit_name(found.group(1))
            if not _NAME.match(name) or name not in names:
                raise ValueError(f"path parameter {{{found.group(1)}}} names no parameter of {spec.function} ({', '.join(sorted(names)) or 'none'})")
            if name in params:
                raise ValueError(f"path parameter {{{found.group(1)}}} appears twice")
            # DOTALL: a parameter holding %0A matches, so the gateway answers 400 naming it, not 404.
            pattern += re.escape(template[last : found.start()]) + f"(?P<p{len(params)}>.+)"
            params.append(name)
            last = found.end()
        if "{" in template[last:] or "}" in template[last:]:
            raise ValueError(f"path {spec.path!r} has an unbalanced brace")
        segments.append(re.compile(pattern + re.escape(template[last:]), re.DOTALL))
    return CompiledRoute(spec, tuple(segments), tuple(params), function)


class RouteTable:
    """The compiled routes of one revision; bad routes are logged and left out."""

    def __init__(self, revision: Revision) -> None:
        self.revision = revision.number
        functions = revision.functions()
        self.routes: list[CompiledRoute] = []
        self.problems: list[str] = []
        for spec in revision.routes:
            try:
                self.routes.append(compile_route(spec, functions))
            except ValueError as exc:
                problem = f"route {spec.method} {spec.path} -> {spec.function} is ignored: {exc}"
                self.problems.append(problem)
                log.warning("bad deployment route", revision=revision.number, problem=problem)

    def find(self, method: str, path: str, segments: list[str] | None = None) -> tuple[CompiledRoute, dict[str, str]]:
        """The route for `method path` and its path parameters; 404 or 405 when there is none.

        `NotFoundError` when no route matches the path, `MethodNotAllowedError` (405) when routes match it
        with other methods (named in the message).

        `segments` are the path's segments, each percent-decoded on its own
        (default: `path` split on '/', for a path with no %2F).
        """
        allowed: list[str] = []
        segments = path.split("/") if segments is None else segments
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.spec.method.upper() == method:
                return route, params
            allowed.append(route.spec.method.upper())
        if allowed:
            methods = ", ".join(sorted(set(allowed)))
            raise MethodNotAllowedError(f"{path} answers {methods}, not {method}", allow=methods)
        raise NotFoundError(f"nothing at {method} {path}; GET /openapi.json lists the API and the deployment's routes")


def bind(
    fn: FunctionType, path_params: dict[str, str], query: list[tuple[str, str]], body: dict[str, Any]
) -> dict[str, Any]:
    """The function's params (JSON, by name) from the path, the query and the fields of the JSON object body.

    Names bind in WIT's kebab-case (`order_id` binds `order-id`). Raises `InvalidValueError` (path
    `params.NAME`) for a name the function does not take, a parameter given in two places, or a text that
    does not read as its type (`convert.from_texts`).
    """
    types = dict(fn.params)
    params: dict[str, Any] = {}
    source: dict[str, str] = {}

    def put(name: str, value: Any, where: str, raw_name: str) -> None:
        if name not in types:
            raise InvalidValueError(
                f"params.{raw_name}",
                f"unknown parameter (from the {where}); the function takes {', '.join(types) or 'no parameters'}",
            )
        if name in params:
            raise InvalidValueError(f"params.{name}", f"given both in the {source[name]} and in the {where}")
        params[name], source[name] = value, where

    for name, text in path_params.items():
        put(name, from_texts([text], types[name], f"params.{name}", "path"), "path", name)
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    for key, texts in grouped.items():
        name = wit_name(key)
        if name not in types:
            put(name, None, "query string", key)
        put(name, from_texts(texts, types[name], f"params.{name}", "query string"), "query string", key)
    for key, value in body.items():
        put(wit_name(str(key)), value, "body", str(key))
    return params


class DeploymentRoutes:
    """Serves every path the API does not, through the active revision's routes."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._lock = threading.Lock()
        self._table: RouteTable | None = None

    async def table(self) -> RouteTable:
        """The route table of the active revision, compiled again when another one is active.

        `NotFoundError` when nothing is deployed.
        """
        revision = await self.gw.revision()
        with self._lock:
            if self._table is None or self._table.revision != revision.number:
                self._table = RouteTable(revision)
            return self._table

    async def handle(self, request: Request) -> Response:
        """Answer a request through the matching route, or 404/405 (needs an `invoke` token when tokens are set).

        200 with the return value once it finishes within the route wait (`Prefer: wait=N` changes it,
        `Prefer: respond-async` skips it), else 202 `{"execution_id", "status"}`; a failed execution as
        `route_result` says. Errors: 400 `bad_request` (bytes that are not UTF-8 or control characters in
        the path or query, a body that is not a JSON object, a bad `Prefer: wait` or Idempotency-Key),
        400 `invalid_value` (a parameter unknown, given twice or of the wrong type, `path` naming
        `params.NAME`), 401/403, 404 `not_found` (`NotFoundError`: no route, or nothing deployed), 405
        `method_not_allowed`, 409 `conflict` (an Idempotency-Key used for another call), 413
        `payload_too_large`, 503, 507.
        """
        handler(request, "route")
        self.gw.auth.check(request, "invoke")
        try:
            table = await self.table()
        except NotFoundError:
            raise NotFoundError(f"nothing at {request.method} {request.url.path}; nothing is deployed yet") from None
        route, path_params = _find(table, request)
        try:
            wait = wait_time(
                request, default=self.gw.settings.route_wait_s, cap=self.gw.settings.max_wait_s, use_query=False
            )
            body = await read_body(request, self.gw.settings.max_body_bytes)
            fields = object_body(body, None, shape=ROUTE_BODY)
            params = bind(route.function.signature, path_params, query_items(request, "params."), fields)
            key = idempotency_key(request)
        except Exception:
            self.gw.metrics.invocations.labels("route", "rejected").inc()
            raise
        submitted, state = await self.gw.invoke(
            route.function.ffqn, params, key=key, raw_size=len(body), via="route", wait=wait
        )
        if state is None or state.live:
            return accepted(submitted.execution_id, progress(state), wait=wait)
        return route_result(state)


def _find(table: RouteTable, request: Request) -> tuple[CompiledRoute, dict[str, str]]:
    """The route for the request and its path parameters as sent (not as uvicorn's lossy decoding has them)."""
    path = decoded_path(request)
    try:
        route, path_params = table.find(request.method, path, decoded_segments(request))
    except (NotFoundError, MethodNotAllowedError):
        require_utf8(path, "the path", "path")
        raise
    for name, text in path_params.items():
        require_name(text, f"path parameter '{name}'", f"params.{name}")
    return route, path_params


def route_result(state: ExecutionState) -> Response:
    """A finished execution as a route answers it: the return value, or an error naming the failure.

    200 with the value (the codec's JSON form), or the error body with the failure's kind as its `code`
    and `execution_id`: 504 for `timeout`, 409 for `cancelled`, 500 for any other kind. Both carry
    `Location` and `Dolmen-Execution-Id`.
    """
    headers = {"Location": location(state.id), "Dolmen-Execution-Id": state.id}
    outcome = state.outcome
    if outcome is None or outcome.failure is None:
        return JSONResponse(None if outcome is None else outcome.value, headers=headers)
    failure = outcome.failure
    response = error_response(
        _FAILURE_STATUS.get(failure.kind, 500), failure.kind, failure.message, execution_id=state.id
    )
    response.headers.update(headers)
    return response
