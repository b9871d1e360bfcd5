"""The gateway's object graph, built once by `create_app` and handed to every handler."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..platform.client import AsyncClient, Client, Submission, Submitted
from ..platform.model import Revision
from ..platform.errors import ReplicaWaitError
from ..platform.external import ExternalTasks
from ..platform.store.async_batch import AsyncBatcher
from ..platform.store.async_executions import AsyncExecutions
from ..platform.store.classes import ClassesInUse
from ..platform.store.completions import Completed
from ..platform.store.connection import aclose, connect, connect_async
from ..platform.store.leases import Leases
from ..platform.store.limits import LimitGate, active_limits
from ..platform.store.pauses import PausedFunctions, PauseResult
from ..platform.store.records import ExecutionState
from .auth import Authenticator
from .metrics import GatewayMetrics
from .replicas import (
    unconfirmed_cancel, unconfirmed_invocation, unconfirmed_pause, unconfirmed_result, unconfirmed_worker_write,
)  # fmt: skip
from .requests import WaitRequest
from .settings import GatewaySettings

log = structlog.get_logger("dolmen.gateway")


class Gateway:
    """Settings, store clients, auth and metrics of one gateway process.

    Constructing it connects (`connect`, `connect_async`): `ConfigError` for a malformed Redis URL,
    `StoreAccessError` when the store refuses this process; a store that cannot be reached yet is no error.
    """

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        # Sync client for listing, cancels and metrics (run in the thread pool);
        # params are bounded by the body limit already, so the client's own limit matches it.
        self.client = Client(
            connect(settings.redis_url, max_connections=128),
            max_params_bytes=settings.max_body_bytes,
            max_value_bytes=settings.max_value_bytes,
        )
        self.aredis = connect_async(settings.redis_url, max_connections=settings.redis_max_connections)
        # Submits and waits stay on the event loop: their commands share round trips on one
        # connection, and one subscription resolves every waiter. With --wait-replicas, the
        # round trips that write wait for the replicas before anyone gets an answer.
        self.batcher = AsyncBatcher(self.aredis, wait=settings.replica_wait)
        self.aclient = AsyncClient(self.client, self.batcher)
        self.executions = AsyncExecutions(self.aredis, self.batcher)
        # External workers' claims and writes: the runners' leases, on the sync client (run in the thread pool).
        self.tasks = ExternalTasks(
            Leases(self.client.redis, self.client.executions.scripts),
            self.client.executions,
            self.client.component_of,
            max_value_bytes=settings.max_value_bytes,
            gate=LimitGate(self.client.executions.scripts, active_limits(self.client.revisions)),
            classes=ClassesInUse(self.client.redis),
            paused=PausedFunctions(self.client.redis),
        )
        self.auth = Authenticator(settings.tokens)
        self.metrics = GatewayMetrics()

    async def close(self) -> None:
        """Stop the finish watcher and the batcher, and close both store clients."""
        await self.executions.close()
        await self.batcher.close()
        await aclose(self.aredis)
        self.client.close()

    async def revision(self) -> Revision:
        """The active revision (cached for half a second); `NotFoundError` when nothing is deployed."""
        return await self.aclient.revision()

    async def invoke(
        self,
        ffqn: str,
        params: Any,
        *,
        key: str | None,
        raw_size: int,
        via: str,
        wait: WaitRequest,
        tags: Mapping[str, str] | None = None,
        priority: str = "normal",
    ) -> tuple[Submitted, ExecutionState | None]:
        """Validate and create an execution, then wait up to `wait` for it; counts the invocation by outcome.

        Returns the state when read; a fresh execution with no wait is not read back: it is pending.
        `raw_size` is the request body's size in bytes; `via` labels the count (`ffqn`, `route`). Raises
        what `AsyncClient.prepare` raises for a bad call (`InvalidNameError`, `NotFoundError` for a function
        not deployed, `InvalidValueError`, `UsageError`, `PayloadTooLargeError`), `ConflictError` for an id
        or Idempotency-Key used for another call, `ReplicaWaitError` told for the invocation
        (`replicas.unconfirmed_invocation`) with --wait-replicas, and `StoreError`.
        """
        with self._counted(via):
            try:
                submission = await self.aclient.prepare(
                    ffqn, params, idempotency_key=key, raw_size=raw_size, tags=tags, priority=priority
                )
            except ReplicaWaitError as exc:
                raise unconfirmed_invocation(exc, None, key) from None
        if wait.seconds <= 0:
            submitted = await self._create(submission, via, key)
            # A replayed submission answers with where its chain is now (continue-as-new).
            return submitted, None if submitted.created else await self.executions.wait_finished(submitted.execution_id, 0)
        # Registered before the create: a finish, however quick, is notified to it.
        with self.executions.watch(submission.execution_id) as watch:
            submitted = await self._create(submission, via, key)
            state = None if submitted.created else await self.executions.require(submitted.execution_id)
            if state is None or state.status != "finished":
                state = await self.executions.outcome(watch, wait.seconds)
            elif state.outcome is not None and state.outcome.continued_as is not None:
                state = await self.executions.wait_finished(state.id, wait.seconds)  # follows the chain
        if submitted.created and not state.live and state.finished_at:
            self.metrics.execution_durations.labels(state.kind).observe((state.finished_at - state.created_at) / 1000)
        return submitted, state

    async def _create(self, submission: Submission, via: str, key: str | None) -> Submitted:
        with self._counted(via):
            try:
                submitted = await self.aclient.create(submission)
            except ReplicaWaitError as exc:
                raise unconfirmed_invocation(exc, submission.execution_id, key) from None
        self._count(via, submitted)
        return submitted

    async def cancel(self, execution_id: str) -> tuple[str, str]:
        """Request the cancellation of `execution_id`'s chain: (what happened, the execution it happened to).

        The cancel goes through the synchronous client, whose connections WAIT
        cannot vouch for, so with --wait-replicas it is confirmed by a barrier
        and WAIT on every master: on a cluster, a master short of replicas
        fails a cancel that wrote elsewhere too. What happened is one of
        `ExecutionStore.cancel_chain`'s answers. Raises `NotFoundError`,
        `InvalidNameError`, and `ReplicaWaitError` (`unconfirmed_cancel`).
        """
        outcome, cancelled = await run_in_threadpool(self.client.executions.cancel_chain, execution_id)
        if outcome != "finished":  # a finished execution was left as it was
            try:
                await self.batcher.confirm()
            except ReplicaWaitError as exc:
                raise unconfirmed_cancel(exc, cancelled) from None
        return outcome, cancelled

    async def pause_or_resume(self, execution_id: str, action: str) -> PauseResult:
        """Pause or resume `execution_id` where its chain is now (`Client.pause`), confirmed as a cancel is.

        `action` is `pause` or `resume`. Raises `NotFoundError`, `InvalidNameError`, `NotPausableError` (finished,
        or a stub), and `ReplicaWaitError` (`unconfirmed_pause`).
        """
        call = self.client.pause if action == "pause" else self.client.resume
        result = await run_in_threadpool(call, execution_id)
        if result.changed:
            try:
                await self.batcher.confirm()
            except ReplicaWaitError as exc:
                raise unconfirmed_pause(exc, result.execution_id, action) from None
        return result

    async def complete(self, execution_id: str, value: Any, *, raw_size: int) -> Completed:
        """Supply a stub execution's result (`Client.complete`), confirmed by the replicas as a cancel is.

        Raises what `Client.complete` raises (`NotFoundError`, `NotAStubError`, `InvalidValueError`,
        `PayloadTooLargeError`, `ResultRecordedError`), and `ReplicaWaitError` (`unconfirmed_result`).
        """
        completed = await run_in_threadpool(self.client.complete, execution_id, value, raw_size=raw_size)
        if completed.recorded:
            try:
                await self.batcher.confirm()
            except ReplicaWaitError as exc:
                raise unconfirmed_result(exc, execution_id) from None
        return completed

    async def confirm_worker_write(self, execution_id: str) -> None:
        """Wait for the replicas (`--wait-replicas`) after an external worker's result or failure, as after a cancel.

        Raises `ReplicaWaitError` (`unconfirmed_worker_write`) when too few confirmed in time.
        """
        try:
            await self.batcher.confirm()
        except ReplicaWaitError as exc:
            raise unconfirmed_worker_write(exc, execution_id) from None

    @contextlib.contextmanager
    def _counted(self, via: str) -> Iterator[None]:
        """Count an invocation that fails inside the block as rejected."""
        try:
            yield
        except Exception:
            self.metrics.invocations.labels(via, "rejected").inc()
            raise

    def _count(self, via: str, submitted: Submitted) -> None:
        self.metrics.invocations.labels(via, "created" if submitted.created else "existing").inc()


def location(execution_id: str) -> str:
    """The execution's URL path, as `Location` headers give it: `/v1/executions/{id}`."""
    return f"/v1/executions/{execution_id}"


def accepted(execution_id: str, status: str, *, wait: WaitRequest | None = None) -> JSONResponse:
    """202 `{"execution_id", "status"}`: the execution exists and runs; its URL is in Location.

    Also `Dolmen-Execution-Id`, and `Preference-Applied` (RFC 7240 §3) when the wait came from `Prefer`.
    """
    return JSONResponse(
        {"execution_id": execution_id, "status": status},
        status_code=202,
        headers=_headers(execution_id, wait),
    )


def progress(state: ExecutionState | None) -> str:
    """The status a 202 reports: a chain caught between two executions (continue-as-new) still runs."""
    if state is None:
        return "pending"
    return "running" if state.live and state.status == "finished" else state.status


def finished(state: ExecutionState, *, wait: WaitRequest | None = None) -> JSONResponse:
    """200: the finished execution (`ExecutionState.to_json`), with its result or failure; headers as `accepted`."""
    return JSONResponse(state.to_json(), status_code=200, headers=_headers(state.id, wait))


def _headers(execution_id: str, wait: WaitRequest | None) -> dict[str, str]:
    headers = {"Location": location(execution_id), "Dolmen-Execution-Id": execution_id}
    if wait is not None and wait.from_prefer:
        headers["Preference-Applied"] = f"wait={wait.seconds:g}" if wait.seconds > 0 else "respond-async"
    return headers


def handler(request: Request, name: str) -> None:
    """Name the handler of this request for the latency histogram."""
    request.state.handler = name
