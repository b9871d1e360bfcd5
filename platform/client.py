"""The client API: what the CLI and the gateway do with a platform.

Submitting validates the function name and the parameters against the
deployed WIT signature (the codec) before anything is written, so bad input
creates nothing. `Client` is synchronous (the CLI); `AsyncClient` is its face
for an event loop (the gateway): the same validation (`validate_submission`),
the write through the asyncio store client.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


from .model import ComponentConfig, FunctionRoute, Revision
from .config import env_int
from .cron import describe as describe_schedule
from .errors import InvalidValueError, NotFoundError, NotPausableError, PayloadTooLargeError, UsageError
from .ffqn import Ffqn
from .ids import ExecutionId
from .store.async_batch import AsyncBatcher
from .store.async_creates import AsyncCreates
from .store.connection import StoreClient, close, connect
from .store.deployments import DeploymentStore, RevisionCache
from .store.completions import Completed, complete, not_a_stub
from .store import pauses
from .store.cron_state import CronStates
from .store.creates import Created, NewExecution
from .store.executions import ExecutionStore
from .store.clock import now_ms
from .store.pauses import PauseResult
from .store.purge import PurgeFilter, PurgeReport, purge_trees
from .store.records import ExecutionState
from .store.retention import root_fields
from .store.scripts import Scripts
from .priorities import check_priority
from .tags import check_tags
from .wit.codec import canonical, canonical_params, describe
from .wit.types import FunctionType
from .wit.limits import DEFAULT_MAX_VALUE_BYTES, MAX_VALUE_ENV, json_size, too_large_message

# The raw params of a call (a request body): room for params at the default
# value limit written by name, with whitespace and escapes.
DEFAULT_MAX_PARAMS_BYTES = 2 * DEFAULT_MAX_VALUE_BYTES


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submitted execution and whether this call created it."""

    execution_id: str
    created: bool
    route: FunctionRoute


@dataclass(frozen=True, slots=True)
class Submission:
    """A validated call, ready to be written: the execution to create and the key that names it."""

    new: NewExecution
    route: FunctionRoute
    idempotency_key: str | None = None

    @property
    def execution_id(self) -> str:
        return self.new.id

    def bound_to(self, execution_id: str) -> Submission:
        """The same call under the id its idempotency key is bound to."""
        return self if execution_id == self.new.id else replace(self, new=replace(self.new, id=execution_id))

    def submitted(self, created: Created) -> Submitted:
        return Submitted(created.id, created.created, self.route)


MAX_IDEMPOTENCY_KEY = 256
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


def check_idempotency_key(key: str) -> None:
    """Refuse a key that is empty, over 256 characters or not printable ASCII (`UsageError`).

    The same rule for the CLI and HTTP: a header is Latin-1 on the wire, so a
    key any client can repeat byte for byte is printable ASCII.
    """
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise UsageError(
            f"an idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters, got {len(key)}; e.g. use a UUID"
        )
    if not _PRINTABLE_ASCII.fullmatch(key):
        bad = next(c for c in key if not _PRINTABLE_ASCII.fullmatch(c))
        raise UsageError(f"an idempotency key must be printable ASCII, e.g. a UUID; it holds {bad!r}")


def validate_submission(
    revision: Revision,
    ffqn: str,
    params: Any,
    *,
    execution_id: str | None = None,
    idempotency_key: str | None = None,
    raw_size: int | None = None,
    max_params_bytes: int = DEFAULT_MAX_PARAMS_BYTES,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    tags: Mapping[str, str] | None = None,
    priority: str = "normal",
) -> Submission:
    """Check a call of `ffqn` against `revision` and make the execution it creates (no I/O).

    Raises the error a user sees for a bad name, bad params, a bad id or key,
    and `PayloadTooLargeError` for params over `max_params_bytes` as given or
    over `max_value_bytes` in their canonical JSON (see `wit.limits`).
    `tags` are checked against platform/tags.py's limits, `priority` against the classes (platform/priorities.py).
    """
    Ffqn.parse(ffqn)
    route = revision.route(ffqn)
    reason = route.signature.unsupported_reason()
    if reason:
        raise UsageError(f"{ffqn} cannot be invoked with JSON: {reason}")
    size = raw_size if raw_size is not None else len(json.dumps(params, ensure_ascii=False).encode())
    if size > max_params_bytes:
        raise PayloadTooLargeError(
            f"params are {size} bytes, over the limit of {max_params_bytes} bytes; "
            "pass large data by reference (e.g. a URL) instead"
        )
    values = canonical_params(params, route.signature)
    canonical_size = json_size(values)
    if canonical_size > max_value_bytes:
        raise PayloadTooLargeError(too_large_message("the params", canonical_size, max_value_bytes))
    if execution_id is not None:
        eid = ExecutionId.parse(execution_id)
        if eid.parent is not None:
            raise UsageError(f"'{execution_id}' is a child id; choose a root id like 'E_<ulid>'")
    else:
        eid = ExecutionId.new()
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
    checked_tags = check_tags(tags or {})
    new = NewExecution(
        id=eid.value,
        ffqn=ffqn,
        kind=route.kind,
        digest=route.component.digest,
        params=values,
        revision=revision.number,
        component=route.component.name,
        # Kept with the root: how long its finished tree stays, and the key to unbind when it goes.
        state_extra=root_fields(route.component.retention_for(ffqn), idempotency_key),
        tags=checked_tags,
        priority=check_priority(priority),
    )
    return Submission(new, route, idempotency_key)


class Client:
    """Submit, read, wait for and cancel executions of the deployed functions."""

    def __init__(
        self,
        client: StoreClient,
        *,
        max_params_bytes: int | None = None,
        max_value_bytes: int | None = None,
    ) -> None:
        """`max_value_bytes` None reads `DOLMEN_MAX_VALUE_BYTES`, as runners do; `max_params_bytes` None is twice it."""
        self.redis = client
        self.executions = ExecutionStore(client, Scripts(client))
        self.deployments = DeploymentStore(client)
        self.revisions = RevisionCache(self.deployments, ttl_s=0.5)
        self.max_value_bytes = env_int(MAX_VALUE_ENV) if max_value_bytes is None else max_value_bytes
        self.max_params_bytes = 2 * self.max_value_bytes if max_params_bytes is None else max_params_bytes

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> Client:
        return cls(connect(url), **kwargs)

    def close(self) -> None:
        close(self.redis)

    # ---------------------------------------------------------- functions

    def revision(self, *, fresh: bool = False) -> Revision:
        """The active revision (cached for half a second unless `fresh`)."""
        revision = self.revisions.active(fresh=fresh)
        if revision is None:
            raise NotFoundError("nothing is deployed yet; run `platform deploy FILE.yaml` first")
        return revision

    def route(self, ffqn: str) -> FunctionRoute:
        Ffqn.parse(ffqn)
        return self.revision().route(ffqn)

    # ------------------------------------------------------------- submit

    def validate(
        self,
        revision: Revision,
        ffqn: str,
        params: Any,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        raw_size: int | None = None,
        tags: Mapping[str, str] | None = None,
        priority: str = "normal",
    ) -> Submission:
        """`validate_submission` under this client's size limits (no I/O)."""
        return validate_submission(
            revision, ffqn, params, execution_id=execution_id, idempotency_key=idempotency_key, raw_size=raw_size,
            max_params_bytes=self.max_params_bytes, max_value_bytes=self.max_value_bytes, tags=tags, priority=priority,
        )  # fmt: skip

    def submit(
        self,
        ffqn: str,
        params: Any,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        raw_size: int | None = None,
        tags: Mapping[str, str] | None = None,
        priority: str = "normal",
    ) -> Submitted:
        """Validate and create an execution of `ffqn`; idempotent by id or key. `priority`: see platform/priorities.py."""
        Ffqn.parse(ffqn)
        # One read of the revision: the route and the revision recorded must agree.
        submission = self.validate(
            self.revision(), ffqn, params, execution_id=execution_id, idempotency_key=idempotency_key, raw_size=raw_size,
            tags=tags, priority=priority,
        )  # fmt: skip
        if submission.idempotency_key is not None:
            bound = self.executions.claim_idempotency_key(submission.idempotency_key, submission.execution_id)
            submission = submission.bound_to(bound)
        return submission.submitted(self.executions.create(submission.new))

    # ---------------------------------------------------------- schedules

    def schedules(self, count: int = 3) -> list[dict[str, Any]]:
        """The active revision's cron schedules with their last fired tick and next `count` ticks (cron.describe)."""
        schedules = self.revision(fresh=True).schedules
        states = CronStates(self.redis).peek(s.name for s in schedules)
        now = now_ms()
        return [describe_schedule(s, states[s.name], now, count) for s in schedules]

    # --------------------------------------------------------------- read

    def get(self, execution_id: str) -> ExecutionState:
        return self.executions.require(execution_id)

    def wait(self, execution_id: str, timeout_s: float) -> ExecutionState:
        return self.executions.wait_finished(execution_id, timeout_s)

    def cancel(self, execution_id: str, reason: str = "cancelled by request") -> str:
        return self.executions.cancel(ExecutionId.parse(execution_id).value, reason)

    def pause(self, execution_id: str) -> PauseResult:
        """Pause an execution (where its continue-as-new chain is now): no runner locks it until resumed."""
        state = self.executions.chain_end(ExecutionId.parse(execution_id).value)
        return pauses.pause(self.executions.scripts, state)

    def resume(self, execution_id: str) -> PauseResult:
        """Resume a paused execution (where its chain is now), queueing it when it has work."""
        state = self.executions.chain_end(ExecutionId.parse(execution_id).value)
        return pauses.resume(self.executions.scripts, state)

    def pause_function(self, ffqn: str) -> bool:
        """Pause every execution of a deployed function; False when it was paused already."""
        route = self.route(ffqn)  # an unknown function is a NotFoundError naming it
        if route.kind == "stub":
            raise NotPausableError(f"{ffqn} is a stub: its executions never run, so there is nothing to pause")
        return pauses.pause_function(self.executions.client, ffqn)

    def resume_function(self, ffqn: str) -> bool:
        """Resume a function paused as a whole; False when it was not paused."""
        Ffqn.parse(ffqn)
        return pauses.resume_function(self.executions.client, ffqn)

    def paused_functions(self) -> dict[str, int]:
        """The functions paused as a whole, with when (ms)."""
        return pauses.paused_functions(self.executions.client)

    def complete(self, execution_id: str, value: Any, *, raw_size: int | None = None) -> Completed:
        """Supply the result of a stub execution (see `store.completions`): checked against its WIT result type.

        Returns whether this call recorded it (False: the same result was there already). Raises
        `NotFoundError`, `NotAStubError`, `InvalidValueError` (a value that does not fit the type,
        naming the bad field), `PayloadTooLargeError`, or `ResultRecordedError` (it finished otherwise).
        """
        state = self.executions.require(ExecutionId.parse(execution_id).value)
        if state.kind != "stub":
            raise not_a_stub(state.id, state.ffqn, state.kind)
        size = raw_size if raw_size is not None else json_size(value)
        if size > self.max_params_bytes:
            raise PayloadTooLargeError(too_large_message("the result", size, self.max_params_bytes))
        signature = self._signature(state)
        if signature.result is None and value is not None:
            raise InvalidValueError("result", f"{state.ffqn} returns nothing: supply null, got {describe(value)}")
        canonical_value = None if signature.result is None else canonical(value, signature.result, "result")
        canonical_size = json_size(canonical_value)
        if canonical_size > self.max_value_bytes:
            raise PayloadTooLargeError(too_large_message("the result", canonical_size, self.max_value_bytes))
        return complete(self.executions.scripts, state, canonical_value)

    def _signature(self, state: ExecutionState) -> FunctionType:
        """The WIT type of `state`'s function as its component declares it: from the revision it was created in."""
        return self.component_of(state, "so a result for it cannot be checked").functions[state.ffqn]

    def component_of(self, state: ExecutionState, why: str) -> ComponentConfig:
        """The deployed component that declares `state`'s function: from the revision it was created in, else the active one.

        `why` ends the `NotFoundError` raised when neither holds it ("so ... cannot ...").
        """
        candidates: list[Revision] = []
        if state.revision is not None:
            try:
                candidates.append(self.revisions.get(state.revision))
            except NotFoundError:
                pass  # removed by `platform gc`: the active revision may still name its component
        active = self.revisions.active()
        if active is not None:
            candidates.append(active)
        for revision in candidates:
            comp = revision.by_digest(state.digest)
            if comp is not None and state.ffqn in comp.functions:
                return comp
        raise NotFoundError(
            f"the WIT signature of {state.ffqn} (component {state.digest[:19]}) is in no stored revision any more, "
            f"{why} ({state.id}); deploy that component again"
        )

    def purge(self, selection: PurgeFilter, *, dry_run: bool = False) -> PurgeReport:
        """Remove the finished trees `selection` picks now, whatever their retention (store/purge.py)."""
        return purge_trees(self.executions.scripts, selection, dry_run=dry_run)


class AsyncClient:
    """`Client`'s submit for an event loop: the same validation, the write with the asyncio client.

    Creates go through `AsyncCreates` (shared round trips); the active revision is
    `Client`'s, re-read in a worker thread at most every `revision_ttl_s`, so
    a request never leaves the loop while it is fresh.
    """

    def __init__(self, client: Client, batcher: AsyncBatcher, *, revision_ttl_s: float = 0.5) -> None:
        self.client = client
        self.creates = AsyncCreates(batcher)
        self.revision_ttl_s = revision_ttl_s
        self._revision: Revision | None = None
        self._fetched_at = 0.0
        self._refresh: asyncio.Future[Revision] | None = None

    async def revision(self) -> Revision:
        """The active revision; raises `NotFoundError` when nothing is deployed."""
        if self._revision is not None and time.monotonic() - self._fetched_at <= self.revision_ttl_s:
            return self._revision
        # One refresh at a time; requests meanwhile wait for it, so none sees a revision older than the TTL.
        if self._refresh is None:
            self._refresh = asyncio.ensure_future(self._fetch_revision())
        return await asyncio.shield(self._refresh)

    async def _fetch_revision(self) -> Revision:
        try:
            revision = await asyncio.to_thread(self.client.revision, fresh=True)
            self._revision, self._fetched_at = revision, time.monotonic()
            return revision
        finally:
            self._refresh = None

    async def prepare(
        self,
        ffqn: str,
        params: Any,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        raw_size: int | None = None,
        tags: Mapping[str, str] | None = None,
        priority: str = "normal",
    ) -> Submission:
        """Validate the call and bind its idempotency key; nothing is created yet."""
        Ffqn.parse(ffqn)
        submission = self.client.validate(
            await self.revision(), ffqn, params, execution_id=execution_id, idempotency_key=idempotency_key,
            raw_size=raw_size, tags=tags, priority=priority,
        )  # fmt: skip
        if submission.idempotency_key is not None:
            bound = await self.creates.claim_idempotency_key(submission.idempotency_key, submission.execution_id)
            submission = submission.bound_to(bound)
        return submission

    async def create(self, submission: Submission) -> Submitted:
        """Write a prepared call; idempotent by its execution id."""
        return submission.submitted(await self.creates.create(submission.new))

    async def submit(
        self,
        ffqn: str,
        params: Any,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        raw_size: int | None = None,
        tags: Mapping[str, str] | None = None,
        priority: str = "normal",
    ) -> Submitted:
        """Validate and create an execution of `ffqn`, as `Client.submit`."""
        submission = await self.prepare(
            ffqn, params, execution_id=execution_id, idempotency_key=idempotency_key, raw_size=raw_size, tags=tags,
            priority=priority,
        )
        return await self.create(submission)
