"""`GET /v1/executions`: pages of executions, newest first, by function, status, outcome, digest, root and tags.

The reading itself is the store's (store/listing.py); here the query is
checked and turned into a `ListFilter`, and an empty page gets a hint when
its filters cannot match anything (a function no revision has, one tag key
given two values).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..platform.deploy.components import full_digest, unknown_ffqn_hint
from ..platform.errors import NotFoundError, UsageError
from ..platform.store.deployments import DeploymentStore
from ..platform.store.listing import Cursor, ListFilter
from ..platform.surface import HTTP
from ..platform.tags import parse_filter
from .decoding import ffqn_text, query_value, require_name
from .errors import BadRequestError
from .graph import Gateway, handler
from .requests import LIST_QUERY, bool_param, check_query, int_param, tag_texts

MAX_PAGE = 200
# The most execution states one `GET /v1/executions` reads (store/listing.py): a page of a filter few executions
# pass stops there, partial, rather than read the whole index while the dashboard waits.
SCAN_LIMIT = 5000


class ExecutionListing:
    """The listing endpoint over one `Gateway`."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def list_executions(self, request: Request) -> Response:
        """Newest first; `ffqn`, `status`, `outcome`, `digest`, `root`, `tag=KEY=VALUE` (repeatable: all must match),
        `limit`, and a `cursor` from a page's `next` or `previous`. A page reads at most SCAN_LIMIT states: a rare
        filter may answer fewer executions than `limit`, `partial`, with a `next` that searches on.

        `GET /v1/executions` (admin): 200 `{"executions", "next", "previous", "partial"}` (`Page.paging`), and
        on an empty page a `hint` when the filters cannot match (`unknown_ffqn_hint`, `_tag_conflict`).
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
            roots_only=bool_param(query_value(request, "root"), "root"),
            surface=HTTP,
        )
        limit = int_param(query_value(request, "limit"), "limit", default=50, low=1, high=MAX_PAGE)
        raw_cursor = query_value(request, "cursor")
        cursor = Cursor.parse(raw_cursor, HTTP) if raw_cursor else None
        page = await run_in_threadpool(lambda: self.gw.client.executions.page(selection, cursor, limit, SCAN_LIMIT))
        answer: dict[str, Any] = {"executions": [s.to_json() for s in page.states], **page.paging()}
        if not page.states:
            hint = _tag_conflict(selection.tags)
            if hint is None and ffqn:
                hint = await run_in_threadpool(unknown_ffqn_hint, DeploymentStore(self.gw.client.redis), ffqn)
            if hint:
                answer["hint"] = hint
        return JSONResponse(answer)

    def _digest_filter(self, text: str) -> str:
        """The whole digest `?digest=` names: a whole digest as it is (its component may be in no revision any
        more), else a unique prefix of a deployed one, as the upgrade check takes `to`; 400 when none or several match."""
        if _WHOLE_DIGEST.match(text):
            return text
        try:
            return full_digest(DeploymentStore(self.gw.client.redis), text, field="digest", surface=HTTP)
        except (NotFoundError, UsageError) as exc:
            raise BadRequestError(f"?digest={text}: {exc.message}", path="digest") from None


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
