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
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..platform.deploy.components import full_digest
from ..platform.errors import NotFoundError, UsageError
from ..platform.model import FunctionRoute, similar_functions
from ..platform.ids import ExecutionId
from ..platform.store.deployments import DeploymentStore
from ..platform.store.listing import Cursor, ListFilter
from ..platform.store.records import Event, ExecutionState
from ..platform.surface import HTTP
from .children import copied_children, copied_message, submitted_children
from .graph import Gateway, accepted, finished, handler, progress
from .decoding import execution_id_param, ffqn_param, ffqn_text, query_value, require_name
from .errors import BadRequestError, MethodNotAllowedError, error_response
from ..platform.priorities import DEFAULT, check_priority
from ..platform.tags import parse_filter, parse_tags
from .requests import INVOKE_QUERY, LIST_QUERY, check_query, idempotency_key, parse_json, read_body, tag_texts, wait_time

MAX_PAGE = 200
# The most execution states one `GET /v1/executions` reads (store/listing.py): a page of a filter few executions
# pass stops there, partial, rather than read the whole index while the dashboard waits.
SCAN_LIMIT = 5000
# The most children `GET /v1/executions/{id}/children` answers with (`total` counts them all).
MAX_CHILDREN = 500


# The POST-only actions under a function's path (`/v1/functions/{ffqn}/ACTION`).
FUNCTION_ACTIONS = frozenset({"pause", "resume", "upgrade-check"})


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

    def routes(self) -> list[BaseRoute]:
        """The `/v1` routes, in matching order (pause and resume ahead of the invocation's `{ffqn:path}`)."""
        return [
            Route("/v1/functions", self.list_functions, methods=["GET"]),
            # Ahead of the invocation: an ffqn ends in `.function`, never in `/pause`.
            Route("/v1/functions/{ffqn:path}/pause", self.pause_function, methods=["POST"]),
            Route("/v1/functions/{ffqn:path}/resume", self.resume_function, methods=["POST"]),
            Route("/v1/functions/{ffqn:path}", self.invoke, methods=["POST"]),
            Route("/v1/functions/{ffqn:path}", self.get_function, methods=["GET"]),
            Route("/v1/executions", self.list_executions, methods=["GET"]),
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
        """`GET /v1/functions/{ffqn}`: 200 `describe_function`; 400 `invalid_name`, 404 `not_found` (not deployed);
        405 `method_not_allowed` (`MethodNotAllowedError`, `Allow: POST`) for a path of a function's POST-only action
        (pause, resume, upgrade-check), which this route's `{ffqn:path}` would otherwise read as a bad name."""
        raw = str(request.path_params.get("ffqn", ""))
        if raw.rpartition("/")[2] in FUNCTION_ACTIONS and "/" in raw:
            handler(request, "method_not_allowed")
            raise MethodNotAllowedError(f"{request.url.path} answers POST, not GET", allow="POST")
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
        count = _int_param(query_value(request, "next"), "next", default=3, low=1, high=100)
        revision = await self.gw.revision()
        listing = await run_in_threadpool(self.gw.client.schedules, count)
        return JSONResponse({"revision": revision.number, "schedules": listing})

    # ----------------------------------------------------------- executions

    async def list_executions(self, request: Request) -> Response:
        """Newest first; `ffqn`, `status`, `outcome`, `digest`, `root`, `tag=KEY=VALUE` (repeatable: all must match),
        `limit`, and a `cursor` from a page's `next` or `previous`. A page reads at most SCAN_LIMIT states: a rare
        filter may answer fewer executions than `limit`, `partial`, with a `next` that searches on.

        `GET /v1/executions` (admin): 200 `{"executions", "next", "previous", "partial"}` (`Page.paging`), and
        on an empty page a `hint` when the filters cannot match (`_ffqn_hint`, `_tag_conflict`).
        400 `bad_request` (an unknown or repeated parameter, `root` not true/false, `limit` outside 1 to
        MAX_PAGE, a `digest` prefix that names no deployed component or several), `invalid_name` (ffqn),
        `usage_error` (status, outcome, cursor, tag).
        """
        handler(request, "list")
        self.gw.auth.check(request, "admin")
        check_query(request, LIST_QUERY)
        ffqn = query_value(request, "ffqn") or None
        if ffqn is not None:
            ffqn_text(require_name(ffqn, "query parameter 'ffqn'", "ffqn"), "ffqn")
        digest = query_value(request, "digest") or None
        if digest is not None:
            digest = await run_in_threadpool(self._digest_filter, digest)
        selection = ListFilter(
            ffqn=ffqn,
            status=query_value(request, "status") or None,  # type: ignore[arg-type]  # ListFilter checks it
            outcome=query_value(request, "outcome") or None,
            digest=digest,
            tags=tuple(parse_filter(tag_texts(request))),
            roots_only=_bool_param(query_value(request, "root"), "root"),
            surface=HTTP,
        )
        limit = _int_param(query_value(request, "limit"), "limit", default=50, low=1, high=MAX_PAGE)
        raw_cursor = query_value(request, "cursor")
        cursor = Cursor.parse(raw_cursor, HTTP) if raw_cursor else None
        page = await run_in_threadpool(lambda: self.gw.client.executions.page(selection, cursor, limit, SCAN_LIMIT))
        answer: dict[str, Any] = {"executions": [s.to_json() for s in page.states], **page.paging()}
        if not page.states:
            hint = _tag_conflict(selection.tags) or (await run_in_threadpool(self._ffqn_hint, ffqn) if ffqn else None)
            if hint:
                answer["hint"] = hint
        return JSONResponse(answer)

    def _ffqn_hint(self, ffqn: str) -> str | None:
        """Why `?ffqn=` matches nothing when no stored revision has the function (a typo?), with close names as
        invoking offers them (`similar_functions`); None when a revision has it."""
        store = DeploymentStore(self.gw.client.redis)
        known: set[str] = set()
        for number in store.numbers():
            try:
                known.update(store.get(number).functions())
            except NotFoundError:  # removed by `platform gc` meanwhile
                continue
        if ffqn in known:
            return None
        similar = similar_functions(ffqn, known)
        close = f"; did you mean {', '.join(similar)}?" if similar else ""
        return f"no stored deployment revision has the function {ffqn}{close}"

    def _digest_filter(self, text: str) -> str:
        """The whole digest `?digest=` names: a whole digest as it is (its component may be in no revision any
        more), else a unique prefix of a deployed one, as the upgrade check takes `to`; 400 when none or several match."""
        if _WHOLE_DIGEST.match(text):
            return text
        try:
            return full_digest(DeploymentStore(self.gw.client.redis), text, field="digest", surface=HTTP)
        except (NotFoundError, UsageError) as exc:
            raise BadRequestError(f"?digest={text}: {exc.message}", path="digest") from None

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
            after = _int_param(after_text, "after", default=-1, low=-1)
        else:
            # Named as the client sent it: a bad header is no `after` parameter (path `Last-Event-ID`).
            after = _int_param(request.headers.get("last-event-id"), "Last-Event-ID", default=-1, low=-1, what="header")
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


_WHOLE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")


def _tag_conflict(tags: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str | None:
    """The hint for `tag` filters that give one key two values (an execution's key has one value: nothing matches)."""
    values: dict[str, list[str]] = {}
    for key, value in tags:
        values.setdefault(key, []).append(value)
    for key, given in values.items():
        if len(given) > 1:
            shown = " and ".join(f"tag={key}={v}" for v in given)
            return f"{shown} give the key {key!r} {len(given)} values; a key has one value, so no execution can match"
    return None


def sse_message(event: Event) -> str:
    """One server-sent event: `id` is the event's index, `event` its type, `data` its JSON (`Event.to_json`, one line).

    The fields of the event stream format of the HTML Living Standard, §9.2 "Server-sent events".
    """
    data = json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.index}\nevent: {event.type}\ndata: {data}\n\n"


def _bool_param(raw: str | None, name: str) -> bool:
    if raw is None or raw in ("", "false"):
        return False
    if raw == "true":
        return True
    raise BadRequestError(f"{name} must be true or false, got {raw!r}", path=name)


def _int_param(
    raw: str | None, name: str, *, default: int, low: int, high: int | None = None, what: str = "query parameter"
) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"the {name} {what} must be an integer, got {raw!r}", path=name) from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise BadRequestError(f"the {name} {what} must be {bound}, got {value}", path=name)
    return value
