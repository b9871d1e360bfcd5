"""Operator endpoints behind the admin token: rerun, fork, the upgrade check, and the deployments with their versions.

They do over HTTP what `platform rerun`, `platform fork`, `platform upgrade
--dry-run`, `platform deployments list` and `platform versions` do, through
the same functions, so the dashboard and the CLI cannot disagree.

Each needs an admin token when tokens are set (401 `unauthorized`, 403
`forbidden`), and may answer 503 `store_error` while the store cannot be
reached; errors in `errors.py`'s JSON shape.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..platform.deploy.components import upgrade_target
from ..platform.model import Revision
from ..platform.deploy.reruns import fork_execution, rerun_execution
from ..platform.deploy.upgrade_checks import Upgrader
from ..platform.deploy.versions import versions
from ..platform.store.deployments import DeploymentStore
from ..platform.surface import HTTP
from ..platform.times import iso_ms
from .graph import Gateway, handler, location
from .decoding import execution_id_param, ffqn_param, query_value
from .errors import BadRequestError
from .requests import check_query, object_body, read_body

# Revisions `GET /v1/deployments` lists by default (newest first); `?limit=` up to MAX_REVISIONS.
DEFAULT_REVISIONS = 20
MAX_REVISIONS = 200
# How long the upgrade check retries an execution a runner holds before reporting it busy.
CHECK_WAIT_S = 2.0


def describe_revision(revision: Revision, active: int | None) -> dict[str, Any]:
    """One revision as `GET /v1/deployments` lists it: its components, their digests and functions.

    `{"revision", "name", "created_at" (iso_ms), "active", "components": [{"name", "kind", "digest", "functions"}]}`;
    `active` compares with the active revision's number `active` (None: nothing active).
    """
    return {
        "revision": revision.number,
        "name": revision.name,
        "created_at": iso_ms(revision.created_at),
        "active": revision.number == active,
        "components": [
            {"name": c.name, "kind": c.kind, "digest": c.digest, "functions": sorted(c.functions)}
            for c in revision.components
        ],
    }


class OperationsApi:
    """The admin endpoints over one `Gateway`."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def routes(self) -> list[BaseRoute]:
        """The admin routes: deployments, rerun, fork and a function's upgrade check (`api.function_route` leaves
        `.../upgrade-check` to this one)."""
        return [
            Route("/v1/deployments", self.deployments, methods=["GET"]),
            Route("/v1/executions/{id}/rerun", self.rerun, methods=["POST"]),
            Route("/v1/executions/{id}/fork", self.fork, methods=["POST"]),
            Route("/v1/functions/{ffqn:path}/upgrade-check", self.upgrade_check, methods=["POST"]),
        ]

    async def deployments(self, request: Request) -> Response:
        """Revisions newest first, and per function every digest with unfinished executions (`platform versions`).

        `GET /v1/deployments?limit=N` (1 to MAX_REVISIONS, default DEFAULT_REVISIONS): 200 `{"active",
        "revisions": [describe_revision], "versions": [VersionRow.to_json]}`; 400 `bad_request` for a bad limit.
        """
        handler(request, "deployments")
        self.gw.auth.check(request, "admin")
        check_query(request, ("limit",))
        raw = query_value(request, "limit")
        limit = DEFAULT_REVISIONS if not raw else _limit(raw)

        def read() -> dict[str, Any]:
            store = DeploymentStore(self.gw.client.redis)
            active = store.active_number()
            numbers = list(reversed(store.numbers()))[:limit]
            return {
                "active": active,
                "revisions": [describe_revision(store.get(n), active) for n in numbers],
                "versions": [row.to_json() for row in versions(self.gw.client.redis)],
            }

        return JSONResponse(await run_in_threadpool(read))

    async def rerun(self, request: Request) -> Response:
        """Start the execution's function again with the same params: 201 `{"execution_id", "rerun_of", ...}`.

        `POST /v1/executions/{id}/rerun`, no body or `{}`; `Location` names the new execution. 400 `bad_request`
        (a body that is not `{}`) or `invalid_name`; 404 `not_found` (the execution or its component is gone);
        507 `store_full`.
        """
        handler(request, "rerun")
        self.gw.auth.check(request, "admin")
        check_query(request)
        source = execution_id_param(request)
        object_body(await read_body(request, self.gw.settings.max_body_bytes), (), shape="no body, or {}")
        rerun = await run_in_threadpool(
            lambda: rerun_execution(self.gw.client.redis, self.gw.settings.data_dir, source, surface=HTTP)
        )
        return JSONResponse(rerun.to_json(), status_code=201, headers={"Location": location(rerun.execution_id)})

    async def fork(self, request: Request) -> Response:
        """Body `{"at": N}`: a new execution from the first N events of a workflow's log, 201 as `platform fork --json`.

        `Location` names the new execution. 400 `bad_request` (`BadRequestError`: a body that is not
        `{"at": integer}`), `invalid_name`, or `usage_error` (`at` outside 1 to the log's length, an activity,
        a copied prefix that does not replay); 404 `not_found` (the execution, its component or a child's
        function is gone); 507 `store_full`.
        """
        handler(request, "fork")
        self.gw.auth.check(request, "admin")
        check_query(request)
        source = execution_id_param(request)
        shape = '{"at": N}, N the number of events to copy (1 or more)'
        body = object_body(await read_body(request, self.gw.settings.max_body_bytes), ("at",), shape=shape)
        at = body.get("at")
        # Only the JSON type is the gateway's to check (`bad_request`); whether N fits this log is the fork's
        # (`usage_error` naming the range, as for an activity or a prefix that diverges): upgrade-check's split.
        if not isinstance(at, int) or isinstance(at, bool):
            got = "missing" if "at" not in body else f"expected an integer, got {json.dumps(at)}"
            raise BadRequestError(f"at: {got}; send {shape}", path="at")
        forked = await run_in_threadpool(
            lambda: fork_execution(self.gw.client.redis, self.gw.settings.data_dir, source, at, surface=HTTP)
        )
        return JSONResponse(forked.to_json(), status_code=201, headers={"Location": location(forked.execution_id)})

    async def upgrade_check(self, request: Request) -> Response:
        """Body `{"to": DIGEST}`: replay every running execution of the workflow on DIGEST and report; writes nothing.

        `POST /v1/functions/{ffqn}/upgrade-check`: 200 `{"dry_run": true, **UpgradeReport.to_json}`. 400
        `bad_request` (`BadRequestError`: a body that is not `{"to": DIGEST}`), `invalid_name` (ffqn),
        `usage_error` (not a workflow, an ambiguous prefix, a component that does not export it); 404
        `not_found` (ffqn or DIGEST not deployed). An execution a runner holds is retried CHECK_WAIT_S
        seconds, then reported busy.
        """
        handler(request, "upgrade")
        self.gw.auth.check(request, "admin")
        check_query(request)
        ffqn = ffqn_param(request)
        shape = '{"to": DIGEST}, a deployed workflow component (a unique prefix is enough)'
        body = object_body(await read_body(request, self.gw.settings.max_body_bytes), ("to",), shape=shape)
        to = body.get("to")
        # As fork does for `at`: say what was wrong with `to` (missing, not a string, empty).
        if not isinstance(to, str) or not to.strip():
            if "to" not in body:
                got = "missing"
            elif isinstance(to, str):
                got = "expected a digest, got an empty string"
            else:
                got = f"expected a string, got {json.dumps(to)}"
            raise BadRequestError(f"to: {got}; send {shape}", path="to")

        def check() -> dict[str, Any]:
            change = upgrade_target(DeploymentStore(self.gw.client.redis), ffqn, to, surface=HTTP)
            upgrader = Upgrader(self.gw.client.redis, self.gw.settings.data_dir)
            try:
                report = upgrader.upgrade(change, dry_run=True, wait_s=CHECK_WAIT_S, follow_up=False)
            finally:
                upgrader.close()
            return {"dry_run": True, **report.to_json()}

        return JSONResponse(await run_in_threadpool(check))


def _limit(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"limit must be an integer, got {raw!r}", path="limit") from None
    if not 1 <= value <= MAX_REVISIONS:
        raise BadRequestError(f"limit must be 1..{MAX_REVISIONS}, got {value}", path="limit")
    return value
