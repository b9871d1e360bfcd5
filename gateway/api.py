"""API v1: functions, invocations by ffqn, executions, their logs and results.

Errors answer `{"error": {"code", "message", "path"}}` with the status of `errors.status_for`. Every
endpoint needs an `invoke` token, or an `admin` one where its docstring says so, when tokens are set: a
missing or unknown token is a 401 `unauthorized`, too small a scope a 403 `forbidden`. Any of them may
answer 503 (`store_error`) while the store cannot be reached. A path parameter that is not UTF-8 or holds
a control character is a 400 `bad_request` naming it (`decoding.path_param`); a malformed execution id or
ffqn a 400 `invalid_name` naming it too (`id`, `ffqn`). Each endpoint refuses a query parameter it does not
take with a 400 `bad_request` naming it and listing the ones it takes (`requests.check_query`); a method a
path does not answer is a 405 with `Allow` (`app._wrong_method`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..platform.errors import NotFoundError
from ..platform.model import FunctionRoute
from ..platform.ids import ExecutionId
from ..platform.store.records import Event, ExecutionState
from .children import copied_children, copied_message, submitted_children
from .graph import Gateway, accepted, finished, handler, progress
from .decoding import execution_id_param, ffqn_param, query_value
from .errors import error_response
from ..platform.priorities import DEFAULT, check_priority
from ..platform.tags import parse_tags
from .listing import ExecutionListing
from .requests import INVOKE_QUERY, check_query, idempotency_key, int_param, parse_json, read_body, tag_texts, wait_time

# The most children `GET /v1/executions/{id}/children` answers with (`total` counts them all).
MAX_CHILDREN = 500


# The POST-only actions under a function's path (`/v1/functions/{ffqn}/ACTION`).
FUNCTION_ACTIONS = ("pause", "resume", "upgrade-check")


def function_route(endpoint: Callable[[Request], Awaitable[Response]], method: str) -> Route:
    """`METHOD /v1/functions/{ffqn:path}`, whose `ffqn` never ends in `/ACTION` of `FUNCTION_ACTIONS`.

    An ffqn ends in `.function`, so such a path is an action's: left to the action's own route, a wrong
    method there is a 405 naming only that route's methods (`app._wrong_method`), not a malformed ffqn
    read by this route, nor an `Allow` that lists this route's method too.
    """
    route = Route("/v1/functions/{ffqn:path}", endpoint, methods=[method])
    pattern = route.path_regex.pattern
    assert pattern.endswith("$"), pattern  # Starlette anchors a route's regex at both ends
    not_an_action = "".join(f"(?<!/{re.escape(action)})" for action in FUNCTION_ACTIONS)
    route.path_regex = re.compile(pattern[:-1] + not_an_action + "$")
    return route


def describe_function(route: FunctionRoute) -> dict[str, Any]:
    """One deployed function as `GET /v1/functions` lists it.

    `ffqn`, `kind`, `component`, `component_digest`, `params` ([{name, type}], WIT types as text), `result`
    (WIT text or None), `signature`, `invocable`, and when they apply `not_invocable_because` and `limits`.
    """
    sig = route.signature
    reason = sig.unsupported_reason()
    return {
        "ffqn": route.ffqn,
        "kind": route.kind,
        "component": route.component.name,
        "component_digest": route.component.digest,
        "params": [{"name": name, "type": ty.wit()} for name, ty in sig.params],
        "result": None if sig.result is None else sig.result.wit(),
        "signature": sig.wit(),
        "invocable": reason is None,
        **({"not_invocable_because": reason} if reason else {}),
        **({"limits": route.component.limits.to_json()} if route.component.limits.any else {}),
    }


class ApiV1:
    """The `/v1` endpoints over one `Gateway`."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.listing = ExecutionListing(gw)

    def routes(self) -> list[BaseRoute]:
        """The `/v1` routes, in matching order (pause and resume ahead of the invocation's `{ffqn:path}`)."""
        return [
            Route("/v1/functions", self.list_functions, methods=["GET"]),
            # Ahead of the invocation: an ffqn ends in `.function`, never in `/pause`.
            Route("/v1/functions/{ffqn:path}/pause", self.pause_function, methods=["POST"]),
            Route("/v1/functions/{ffqn:path}/resume", self.resume_function, methods=["POST"]),
            function_route(self.invoke, "POST"),
            function_route(self.get_function, "GET"),
            Route("/v1/executions", self.listing.list_executions, methods=["GET"]),
            Route("/v1/executions/{id}", self.get_execution, methods=["GET"]),
            Route("/v1/executions/{id}/events", self.events, methods=["GET"]),
            Route("/v1/executions/{id}/children", self.children, methods=["GET"]),
            Route("/v1/executions/{id}/result", self.result, methods=["GET"]),
            Route("/v1/executions/{id}/result", self.complete, methods=["PUT"]),
            Route("/v1/executions/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/v1/schedules", self.list_schedules, methods=["GET"]),
            Route("/v1/executions/{id}/pause", self.pause, methods=["POST"]),
            Route("/v1/executions/{id}/resume", self.resume, methods=["POST"]),
        ]

    # ------------------------------------------------------------ functions

    async def list_functions(self, request: Request) -> Response:
        """`GET /v1/functions`: 200 `{"revision", "deployment", "functions": [describe_function, + "paused"]}`.

        404 `not_found` when nothing is deployed.
        """
        handler(request, "functions")
        self.gw.auth.check(request, "invoke")
        check_query(request)
        revision = await self.gw.revision()
        paused = await run_in_threadpool(self.gw.client.paused_functions)
        functions = [
            {**describe_function(r), **({"paused": True} if ffqn in paused else {})}
            for ffqn, r in sorted(revision.functions().items())
        ]
        return JSONResponse({"revision": revision.number, "deployment": revision.name, "functions": functions})

    async def get_function(self, request: Request) -> Response:
        """`GET /v1/functions/{ffqn}`: 200 `describe_function`; 400 `invalid_name`, 404 `not_found` (not deployed).

        The path of a function's POST-only action (`.../pause`, `/resume`, `/upgrade-check`) never reaches it
        (`function_route`): a GET there is a 405 with `Allow: POST`.
        """
        handler(request, "functions")
        self.gw.auth.check(request, "invoke")
        check_query(request)
        ffqn = ffqn_param(request)
        revision = await self.gw.revision()
        return JSONResponse(describe_function(revision.route(ffqn)))

    async def invoke(self, request: Request) -> Response:
        """POST params (object by name, array by position): 202, or 200 with the finished execution.

        `?tag=KEY=VALUE` (repeatable) tags the execution and everything it starts;
        `?priority=high|normal|low` gives it and everything it starts a priority class; `?wait=SECONDS` or
        `Prefer: wait=N` waits for it (up to --max-wait; none by default), `Idempotency-Key` makes it idempotent.

        200 with the finished execution, 202 `{"execution_id", "status"}` while it runs; both with `Location`
        and `Dolmen-Execution-Id`, `Idempotent-Replayed: true` for a repeat, `Preference-Applied` when
        `Prefer` set the wait. Errors: 400 `bad_request` (an unknown or repeated query parameter, a bad wait,
        key or body), `invalid_name` (ffqn), `invalid_value` (params that do not fit the WIT types, `path`
        naming the field), `usage_error` (tags, priority, a function not invocable with JSON); 404
        `not_found` (not deployed); 409 `conflict` (an id or key used for another call); 413
        `payload_too_large`; 503 `replicas_unconfirmed` (with --wait-replicas, see `replicas.py`); 507
        `store_full`.
        """
        handler(request, "invoke")
        self.gw.auth.check(request, "invoke")
        try:
            ffqn = ffqn_param(request)
            check_query(request, INVOKE_QUERY, hint="params go in the body")
            wait = wait_time(request, default=0.0, cap=self.gw.settings.max_wait_s)
            body = await read_body(request, self.gw.settings.max_body_bytes)
            params = parse_json(body)
            key = idempotency_key(request)
            tags = parse_tags(tag_texts(request))
            given = query_value(request, "priority")
            priority = check_priority(DEFAULT if given is None else given)
        except Exception:
            self.gw.metrics.invocations.labels("ffqn", "rejected").inc()
            raise
        submitted, state = await self.gw.invoke(
            ffqn, params, key=key, raw_size=len(body), via="ffqn", wait=wait, tags=tags, priority=priority
        )
        if state is not None and not state.live:
            response = finished(state, wait=wait)
        else:
            response = accepted(submitted.execution_id, progress(state), wait=wait)
        if not submitted.created:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    # ------------------------------------------------------------ schedules

    async def list_schedules(self, request: Request) -> Response:
        """`GET /v1/schedules` (admin): the active revision's cron schedules: definition, last fire and the next
        `next` fire times (ms since the epoch; `next` 1 to 100, default 3).

        200 `{"revision", "schedules": [cron.describe]}`; 400 `bad_request` for a bad `next`, 404 `not_found`
        when nothing is deployed.
        """
        handler(request, "schedules")
        self.gw.auth.check(request, "admin")
        check_query(request, ("next",))
        count = int_param(query_value(request, "next"), "next", default=3, low=1, high=100)
        revision = await self.gw.revision()
        listing = await run_in_threadpool(self.gw.client.schedules, count)
        return JSONResponse({"revision": revision.number, "schedules": listing})

    # ----------------------------------------------------------- executions

    async def get_execution(self, request: Request) -> Response:
        """`GET /v1/executions/{id}`: 200 the execution (`ExecutionState.to_json`); 400 `invalid_name`, 404 `not_found`
        (worded apart for a child a fork only copied)."""
        handler(request, "read")
        self.gw.auth.check(request, "invoke")
        check_query(request)
        state = await self._require(execution_id_param(request))
        return JSONResponse(state.to_json())

    async def children(self, request: Request) -> Response:
        """The executions a workflow started, in submission order (from its log's `child_submitted` events).

        200 `{"execution_id", "total", "children": [state, ...] (at most MAX_CHILDREN), "copied":
        [CopiedChild.to_json]}`; 400 `invalid_name`, or `bad_request` for any query parameter (no `limit`:
        `total` and MAX_CHILDREN bound it), 404 `not_found`.
        """
        handler(request, "read")
        self.gw.auth.check(request, "invoke")
        check_query(request)
        state = await self._require(execution_id_param(request))
        events = await self.gw.executions.events(state.id)
        ids = submitted_children(events)
        copied = copied_children(state.id, events)
        wanted = [i for i in ids if i not in copied][:MAX_CHILDREN]
        found: list[ExecutionState | None] = []
        # In slices: a workflow with thousands of children must not open thousands of reads at once.
        for start in range(0, len(wanted), 50):
            found += await asyncio.gather(*(self.gw.executions.get(i) for i in wanted[start : start + 50]))
        # `total` counts every child the log submitted: those listed, those a fork copied (never created), and
        # those removed by their retention or past MAX_CHILDREN (neither listed).
        listed = [s.to_json() for s in found if s is not None]
        return JSONResponse(
            {
                "execution_id": state.id,
                "total": len(ids),
                "children": listed,
                "copied": [c.to_json() for c in copied.values()],
            }
        )

    async def _require(self, execution_id: str) -> ExecutionState:
        """The execution, or a 404 that tells a child a fork only copied from one that does not exist."""
        try:
            return await self.gw.executions.require(execution_id)
        except NotFoundError as exc:
            raise await self._not_found(execution_id, exc) from None

    async def _not_found(self, execution_id: str, missing: NotFoundError) -> NotFoundError:
        """`missing`, unless `execution_id` names a child that its parent, a fork, copied and never created."""
        parent = ExecutionId.parse(execution_id).parent
        if parent is not None and await self.gw.executions.get(parent.value) is not None:
            copied = copied_children(parent.value, await self.gw.executions.events(parent.value)).get(execution_id)
            if copied is not None:
                return NotFoundError(copied_message(copied))
        return missing

    async def result(self, request: Request) -> Response:
        """Long-poll: 200 with the finished execution, or 202 when `wait` runs out first.

        `?wait=SECONDS` or `Prefer: wait=N` (up to --max-wait; 0 by default); a continue-as-new chain is
        followed. 400 `bad_request` (wait) or `invalid_name`, 404 `not_found`.
        """
        handler(request, "result")
        self.gw.auth.check(request, "invoke")
        check_query(request, ("wait",))
        wait = wait_time(request, default=0.0, cap=self.gw.settings.max_wait_s)
        execution_id = execution_id_param(request)
        try:
            state = await self.gw.executions.wait_finished(execution_id, wait.seconds)
        except NotFoundError as exc:
            raise await self._not_found(execution_id, exc) from None
        if not state.live:
            return finished(state, wait=wait)
        return accepted(state.id, progress(state), wait=wait)

    async def complete(self, request: Request) -> Response:
        """PUT a stub execution's result (the JSON form of its WIT result type): 200 with the finished execution.

        The same result again is answered alike (`Idempotent-Replayed: true`); another is a 409.
        Errors: 400 `bad_request` (not JSON), `invalid_name`, `invalid_value` (does not fit the result type,
        `path` naming the field); 404 `not_found`; 409 `not_a_stub`, `result_recorded`; 413
        `payload_too_large`; 503 `replicas_unconfirmed` (with --wait-replicas).
        """
        handler(request, "complete")
        # Like an invocation: a system that supplies results needs no admin token.
        self.gw.auth.check(request, "invoke")
        check_query(request)
        execution_id = execution_id_param(request)
        body = await read_body(request, self.gw.settings.max_body_bytes)
        value = parse_json(body)
        completed = await self.gw.complete(execution_id, value, raw_size=len(body))
        state = await self.gw.executions.require(execution_id)
        response = finished(state)
        if not completed.recorded:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    async def cancel(self, request: Request) -> Response:
        """`POST /v1/executions/{id}/cancel` (admin), where its continue-as-new chain is now.

        200 `{"execution_id", "cancel": "cancelled"}` when cancelled at once, 202 with `"requested"` (its
        runner cancels it) or `"already"` (requested before); `chain`: the id asked for, when the chain
        moved on. 409 `already_finished`; 400 `invalid_name`; 404 `not_found`; 503 `replicas_unconfirmed`;
        507 `store_full`.
        """
        handler(request, "cancel")
        self.gw.auth.check(request, "admin")
        check_query(request)
        asked = execution_id_param(request)
        # A workflow that continued as new is cancelled where its chain is now.
        outcome, execution_id = await self.gw.cancel(asked)
        if outcome == "finished":
            return error_response(
                409, "already_finished", f"execution {execution_id} has already finished; nothing to cancel"
            )
        status = 200 if outcome == "cancelled" else 202
        body = {"execution_id": execution_id, "cancel": outcome, **({"chain": asked} if asked != execution_id else {})}
        return JSONResponse(body, status_code=status)

    async def pause(self, request: Request) -> Response:
        """Pause an execution (where its chain is now): 200 `{"execution_id", "pause": "done"|"already"}`.

        Admin. 400 `invalid_name`, 404 `not_found`, 409 `not_pausable` (finished, or a stub), 503
        `replicas_unconfirmed`.
        """
        return await self._pause_or_resume(request, "pause")

    async def resume(self, request: Request) -> Response:
        """Resume a paused execution: 200 `{"execution_id", "resume": "done"|"already", "queued"}`.

        Admin; errors as `pause`.
        """
        return await self._pause_or_resume(request, "resume")

    async def _pause_or_resume(self, request: Request, action: str) -> Response:
        handler(request, action)
        self.gw.auth.check(request, "admin")
        check_query(request)
        asked = execution_id_param(request)
        result = await self.gw.pause_or_resume(asked, action)
        return JSONResponse({**result.to_json(action), **({"chain": asked} if asked != result.execution_id else {})})

    async def pause_function(self, request: Request) -> Response:
        """Pause every execution of a function, present and future: 200 `{"ffqn", "pause": "done"|"already"}`.

        Admin. 400 `invalid_name`, 404 `not_found` (not deployed), 409 `not_pausable` (a stub).
        """
        return await self._function_pause_or_resume(request, "pause")

    async def resume_function(self, request: Request) -> Response:
        """Resume a function paused as a whole: 200 `{"ffqn", "resume": "done"|"already"}`.

        Admin. 400 `invalid_name`.
        """
        return await self._function_pause_or_resume(request, "resume")

    async def _function_pause_or_resume(self, request: Request, action: str) -> Response:
        handler(request, action)
        self.gw.auth.check(request, "admin")
        check_query(request)
        ffqn = ffqn_param(request)
        client = self.gw.client
        call = client.pause_function if action == "pause" else client.resume_function
        changed = await run_in_threadpool(call, ffqn)
        return JSONResponse({"ffqn": ffqn, action: "done" if changed else "already"})

    # --------------------------------------------------------------- events

    async def events(self, request: Request) -> Response:
        """The log as JSON, or live as server-sent events when `Accept: text/event-stream`.

        Only events with an index above `?after=N` (else `Last-Event-ID`, else -1: all). JSON: 200
        `{"execution_id", "status", "events": [Event.to_json]}`. Event stream (HTML Living Standard §9.2,
        server-sent events): `retry: 2000` (ms), one `sse_message` per event, a `: keep-alive` comment
        each time a read waited in vain, until `finished` or `GatewaySettings.max_stream_s` (1 h); a client
        reconnects with `Last-Event-ID`. 400 `bad_request` (`after` or `Last-Event-ID`, the path naming which,
        not an integer >= -1) or
        `invalid_name`, 404 `not_found`.
        """
        handler(request, "events")
        self.gw.auth.check(request, "invoke")
        check_query(request, ("after",))
        execution_id = execution_id_param(request)
        after_text = query_value(request, "after")
        if after_text is not None:
            after = int_param(after_text, "after", default=-1, low=-1)
        else:
            # Named as the client sent it: a bad header is no `after` parameter (path `Last-Event-ID`).
            after = int_param(request.headers.get("last-event-id"), "Last-Event-ID", default=-1, low=-1, what="header")
        if "text/event-stream" in request.headers.get("accept", ""):
            state = await self._require(execution_id)
            return StreamingResponse(
                self._sse(state.id, after),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        state = await self._require(execution_id)
        events = await self.gw.executions.events(state.id)
        return JSONResponse(
            {
                "execution_id": state.id,
                "status": state.status,
                "events": [e.to_json() for e in events if e.index > after],
            }
        )

    async def _sse(self, execution_id: str, after: int) -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        async for event in self.gw.executions.follow(
            execution_id, after=after, timeout_s=self.gw.settings.max_stream_s
        ):
            yield ": keep-alive\n\n" if event is None else sse_message(event)


def sse_message(event: Event) -> str:
    """One server-sent event: `id` is the event's index, `event` its type, `data` its JSON (`Event.to_json`, one line).

    The fields of the event stream format of the HTML Living Standard, §9.2 "Server-sent events".
    """
    data = json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.index}\nevent: {event.type}\ndata: {data}\n\n"
