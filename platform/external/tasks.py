"""External workers' side of the store: claim executions of `kind: external` functions, heartbeat, complete, fail.

An external execution is queued like an activity (same queues, same
consumer group) and locked with the same lease (`store.leases`): its version
is the fencing token, and every write below is the runners' fenced script
(finish, fail, extend), so a worker whose lease expired and was taken over
writes nothing. The claim takes over entries whose lease expired (the lock
records `attempt_lost`), as a runner reclaims a dead runner's entries; the
retry policy, the timeout and the give-up after lost attempts are the
runners' decisions (`execution.retry`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ..model import ComponentConfig, Revision
from ..errors import (
    FencedError,
    InvalidValueError,
    LeaseLostError,
    NotExternalError,
    NotFoundError,
    PayloadTooLargeError,
    StoreError,
    UsageError,
)
from ..priorities import DEFAULT, by_class, queue_name
from ..times import iso_ms
from ..runner.queues import read_by_class
from ..execution.retry import Finish, RetryAt, after_failure, after_lock, after_return
from ..store.classes import ClassesInUse
from ..store.pauses import PausedFunctions
from ..store.executions import ExecutionStore
from ..store.clock import now_ms
from ..store.leases import Lease, Leases, QueueEntry
from ..store.limits import LimitGate, Permit, PermitRequest, permit_of
from ..store.records import ExecutionState, Failure, Outcome
from ..wit.codec import canonical, describe
from ..wit.limits import json_size, too_large_message
from ..wit.types import ResultT
from .tokens import TaskToken

log = structlog.get_logger("dolmen.external")

# The consumer (of the runners' group) under which claimed entries stay pending: one for every worker,
# since the lease, not the consumer, says who holds an execution.
CONSUMER = "external-workers"
# The lease a claim or a heartbeat may ask for, in ms (`lease_ms_of`).
MIN_LEASE_MS = 500
MAX_LEASE_MS = 3_600_000
# The most attempts one claim takes (its `max`).
MAX_CLAIM = 100
# How often a waiting claim looks again whether a function it asks for was resumed, at most, in ms.
PAUSED_RECHECK_MS = 250

ComponentOf = Callable[[ExecutionState, str], ComponentConfig]


@dataclass(frozen=True, slots=True)
class Task:
    """One claimed attempt, as the worker gets it: the execution as locked, its lease's token, and when the lease
    ends (`until_ms`, ms since the epoch)."""

    state: ExecutionState
    token: TaskToken
    until_ms: int

    def to_json(self) -> dict[str, Any]:
        """`{"execution_id", "ffqn", "params", "attempt", "lease": {"owner", "version", "token", "until"}}`, with
        `timeout_at` when the function has a timeout; times as `iso_ms` writes them, `params` positional JSON."""
        lease = {"owner": self.token.owner, "version": self.token.version, "token": self.token.encode(), "until": iso_ms(self.until_ms)}
        data: dict[str, Any] = {
            "execution_id": self.state.id,
            "ffqn": self.state.ffqn,
            "params": self.state.params,
            "attempt": self.state.attempt,
            "lease": lease,
        }
        if self.token.deadline_ms is not None:
            data["timeout_at"] = iso_ms(self.token.deadline_ms)
        return data


@dataclass(frozen=True, slots=True)
class Settled:
    """What a completion or a failure came to: finished, or another attempt at `retry_at_ms` (ms since the epoch)."""

    execution_id: str
    retry_at_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        """`{"execution_id", "status": "finished"}`, or `{"execution_id", "status": "retrying", "retry_at"}`
        (`retry_at` as `iso_ms` writes it)."""
        if self.retry_at_ms is None:
            return {"execution_id": self.execution_id, "status": "finished"}
        return {"execution_id": self.execution_id, "status": "retrying", "retry_at": iso_ms(self.retry_at_ms)}


def check_claimed(ffqns: object, revision: Revision | None) -> list[str]:
    """The ffqns of a claim, each deployed as `kind: external` in the active revision, or a `UsageError` naming the bad one.

    `ffqns` is the request's JSON value (a non-empty list of strings); the result keeps their order, without repeats.
    """
    if not isinstance(ffqns, list) or not ffqns or not all(isinstance(f, str) for f in ffqns):
        raise UsageError("ffqns: expected a non-empty list of function names (ffqns)", path="ffqns")
    functions = revision.functions() if revision is not None else {}
    for i, ffqn in enumerate(ffqns):
        route = functions.get(ffqn)
        if route is None:
            raise UsageError(f"ffqns[{i}]: {ffqn} is not deployed; GET /v1/functions lists the deployed ones", path=f"ffqns[{i}]")
        if route.kind != "external":
            raise UsageError(
                f"ffqns[{i}]: {ffqn} is deployed as kind: {route.kind}, which the platform runs itself; "
                "workers claim only functions of components deployed as kind: external",
                path=f"ffqns[{i}]",
            )
    return list(dict.fromkeys(ffqns))


class ExternalTasks:
    """Claims and settles attempts of external executions for workers (the gateway's /v1/workers API).

    `component_of(state, why)` finds the deployed component of an execution (`Client.component_of`: raises
    `NotFoundError` ending with `why`). `max_value_bytes` bounds a result's canonical JSON. `gate` applies the
    functions' limits, `classes` the priority classes in use, `paused` the functions paused as a whole (each
    left out when None).
    """

    def __init__(
        self,
        leases: Leases,
        executions: ExecutionStore,
        component_of: ComponentOf,
        *,
        max_value_bytes: int,
        gate: LimitGate | None = None,
        classes: ClassesInUse | None = None,
        paused: PausedFunctions | None = None,
    ) -> None:
        self.leases = leases
        self.executions = executions
        self.component_of = component_of
        self.max_value_bytes = max_value_bytes
        # Platform-wide limits per function (store/limits.py), shared with the runners.
        self.gate = gate
        # The priority classes in use (platform/priorities.py): their queues are read highest first.
        self.classes = classes
        # The functions paused as a whole (store/pauses.py): no claim takes their executions.
        self.paused = paused

    # ------------------------------------------------------------- claims

    def claim(self, ffqns: Sequence[str], *, worker: str, lease_ms: int, count: int, block_ms: int) -> list[Task]:
        """Up to `count` attempts of `ffqns` (checked by `check_claimed`), locked for `lease_ms` ms.

        First the entries whose holder went quiet for `lease_ms` (a lease that
        expired is taken over: `attempt_lost`), then new ones, waiting up to
        `block_ms` ms (0: not at all) for one. Executions that finish at once
        (cancelled, out of attempts, their function gone) are settled here and
        not handed out. Raises `StoreError` when the store cannot be read or refuses the locks.
        """
        owner = f"worker:{worker}:{os.urandom(4).hex()}"
        deadline = time.monotonic() + block_ms / 1000
        while True:
            tasks = self._claim_once(ffqns, owner, lease_ms, count, max(0, round((deadline - time.monotonic()) * 1000)))
            if tasks or time.monotonic() >= deadline:
                return tasks
            # Nothing for now: what was read went back to its queue (its function is at its limits), or every
            # function asked for is paused or held back. Look again once one may be due, within the claim's wait.
            left_ms = max(1, round((deadline - time.monotonic()) * 1000))
            time.sleep(min(self.gate.wait_ms(left_ms) if self.gate is not None else left_ms, PAUSED_RECHECK_MS) / 1000)

    def _claim_once(self, ffqns: Sequence[str], owner: str, lease_ms: int, count: int, block_ms: int) -> list[Task]:
        # A function paused as a whole (store/pauses.py) or held back by its limits (store/limits.py) is left alone.
        skipped = self.gate.held_back() if self.gate is not None else frozenset[str]()
        if self.paused is not None:
            skipped |= self.paused.get()
        ffqns = [ffqn for ffqn in ffqns if ffqn not in skipped]
        if not ffqns:
            return []
        used = self.classes.get() - {DEFAULT} if self.classes is not None else frozenset[str]()
        names = [name for part in by_class(ffqns, used) for name in part]
        tasks: list[Task] = []
        reclaimed: list[QueueEntry] = []
        for name in names:
            reclaimed += self.leases.reclaim(CONSUMER, name, lease_ms, count=count)
        tasks += self._start(reclaimed[:count], owner, lease_ms)
        wanted = count - len(tasks)
        if wanted > 0:
            if tasks or block_ms <= 0:
                fresh = read_by_class(self.leases, CONSUMER, names, wanted, None)
            else:
                block = self.gate.wait_ms(block_ms) if self.gate is not None else block_ms
                fresh = read_by_class(self.leases, CONSUMER, names, wanted, block)
            tasks += self._start(fresh, owner, lease_ms)
        return tasks

    def _start(self, entries: list[QueueEntry], owner: str, lease_ms: int) -> list[Task]:
        """Lock what was read (in one round trip) and start an attempt of each lock granted."""
        if not entries:
            return []
        permits: dict[str, Permit] = {}
        if self.gate is not None:
            entries, permits = self.gate.admit(entries, owner, lease_ms)
        try:
            results = self.leases.lock_many([(entry.execution_id, None) for entry in entries], owner, lease_ms)
        except StoreError:
            self._give_back(list(permits.values()))
            raise
        tasks: list[Task] = []
        done: list[QueueEntry] = []
        for entry, result in zip(entries, results):
            task = self._attempt(entry, result) if isinstance(result, Lease) else None
            if task is None and entry.execution_id in permits:
                self._give_back([permits.pop(entry.execution_id)])
            if isinstance(result, Lease):
                if task is not None:
                    tasks.append(task)
            elif isinstance(result, StoreError):
                log.error("store refused a lock", execution_id=entry.execution_id, error=str(result))
            elif result.reason != "locked":
                done.append(entry)  # finished, blocked, early or gone: moved on by its timer or the repair sweep
            # A live lease keeps its entry pending: taken over once that lease may have expired.
        self.leases.ack(done)
        return tasks

    def _attempt(self, entry: QueueEntry, lease: Lease) -> Task | None:
        """The task of a granted lock, or None when it finished at once (gone from every revision, out of attempts, cancelled)."""
        state = lease.state
        try:
            config = self.component_of(state, "so it cannot be run")
        except NotFoundError as exc:
            self._finish(lease, [entry], Outcome(failure=Failure("trap", f"cannot run {state.ffqn}: {exc}")))
            return None
        gave_up = after_lock(config.retry, state.attempt)
        if gave_up is not None:
            log.warning("giving up after lost attempts", execution_id=state.id, attempt=state.attempt)
            self._finish(lease, [entry], gave_up.outcome)
            return None
        if state.cancel_requested:
            self._finish(lease, [entry], Outcome(failure=Failure("cancelled", "cancelled before a worker ran it")))
            return None
        # The attempt began when it was locked (`updated_at` of the lock).
        deadline = None if config.timeout_ms is None else state.updated_at + config.timeout_ms
        log.info("claimed", execution_id=state.id, ffqn=state.ffqn, attempt=state.attempt, owner=lease.owner)
        token = TaskToken(lease.owner, state.version, entry.entry_id, deadline, state.lock_until - state.updated_at)
        return Task(state, token, state.lock_until)

    # ------------------------------------------------------- the lease's writes

    def heartbeat(self, execution_id: str, token_text: object, lease_ms: int | None = None) -> int:
        """Extend the lease by `lease_ms` ms from now (None: as long as claimed); when it now ends (ms since the epoch).

        `token_text` is the claim's token as the worker sent it. Raises `UsageError` for a token this platform
        did not give, `NotFoundError` for an unknown execution (or a function no revision deploys any more),
        `NotExternalError` for an execution that is not external, `LeaseLostError` once the lease is not the
        worker's any more (`details["reason"]`: taken_over, finished, retrying, timed_out, cancelled), and
        `StoreError` when the store refused the extension.
        """
        token = TaskToken.parse(token_text)
        lease_ms = token.lease_ms if lease_ms is None else lease_ms
        lease, config = self._lease(execution_id, token)
        self._check_deadline(lease, config, token)
        status = self.leases.extend([lease], lease_ms)[lease.id]
        if status == "ok":
            until = now_ms() + lease_ms
            if self.gate is not None:
                self.gate.permits.renew(self._permit(lease, token), until)
            return until
        if status == "cancel":
            cancelled = Outcome(failure=Failure("cancelled", "cancelled while a worker ran it"))
            self._finish(lease, self._entries(lease, token), cancelled)
            self._give_back(self._permit(lease, token))
            raise LeaseLostError(
                f"execution {execution_id} was cancelled: stop working on it (nothing more is accepted for it)",
                reason="cancelled",
                execution_id=execution_id,
            )
        if status == "error":
            raise StoreError(f"the store refused to extend the lease of {execution_id}; send the heartbeat again")
        raise self._lost(execution_id, token)

    def complete(self, execution_id: str, token_text: object, value: Any) -> Settled:
        """The worker's result: checked against the WIT result type (`InvalidValueError`; `PayloadTooLargeError` over the value limit), then finished (or retried: an `err` with `retry_on_err`).

        `value` is the result's JSON form (None for a function that returns nothing). Raises besides, as
        `heartbeat` does, `UsageError` for a bad token, `NotFoundError`, `NotExternalError` and `LeaseLostError`.
        """
        token = TaskToken.parse(token_text)
        lease, config = self._lease(execution_id, token)
        signature = config.functions[lease.state.ffqn]
        if signature.result is None and value is not None:
            raise InvalidValueError("result", f"{lease.state.ffqn} returns nothing: send null, got {describe(value)}")
        result = None if signature.result is None else canonical(value, signature.result, "result")
        size = json_size(result)
        if size > self.max_value_bytes:
            raise PayloadTooLargeError(too_large_message("the result", size, self.max_value_bytes))
        self._check_deadline(lease, config, token)
        decision = after_return(config.retry, lease.state.attempt, result, isinstance(signature.result, ResultT), now_ms())
        return self._settle(lease, token, decision, Failure("err", "returned err"), err_value=result)

    def fail(self, execution_id: str, token_text: object, message: str, *, retryable: bool = True) -> Settled:
        """The worker's attempt failed: another attempt per the retry policy, or (not `retryable`, or none left) finished failed.

        `message` becomes the `worker_error` failure's message. Raises, as `heartbeat` does, `UsageError` for a
        bad token, `NotFoundError`, `NotExternalError` and `LeaseLostError`.
        """
        token = TaskToken.parse(token_text)
        lease, config = self._lease(execution_id, token)
        self._check_deadline(lease, config, token)
        failure = Failure("worker_error", message)
        if retryable:
            decision: RetryAt | Finish = after_failure(config.retry, lease.state.attempt, failure, now_ms())
        else:
            decision = Finish(Outcome(failure=failure))
        return self._settle(lease, token, decision, failure)

    # ------------------------------------------------------------- helpers

    def _lease(self, execution_id: str, token: TaskToken) -> tuple[Lease, ComponentConfig]:
        """The lease `token` names, if it is still the execution's; its component's config."""
        state = self.executions.require(execution_id)
        if state.kind != "external":
            raise NotExternalError(
                f"execution {state.id} ({state.ffqn}) is a {state.kind}: workers settle only executions of "
                "functions deployed as kind: external",
                execution_id=state.id,
            )
        if state.status != "running" or state.owner != token.owner or state.version != token.version:
            raise self._lost(state.id, token, state)
        return Lease(state, token.owner), self.component_of(state, "so its attempt cannot be settled")

    def _lost(self, execution_id: str, token: TaskToken, state: ExecutionState | None = None) -> LeaseLostError:
        state = state or self.executions.get(execution_id)
        if state is None:
            reason, what = "finished", "it no longer exists (removed once its retention passed)"
        elif state.status == "finished":
            how = "finished" if state.outcome is None or state.outcome.failure is None else f"failed ({state.outcome.failure.kind})"
            reason, what = "finished", f"it has {how} already"
        elif state.version != token.version:
            reason, what = "taken_over", f"its lease expired and it was taken over (now attempt {state.attempt})"
        else:
            # Same lease, not running: its attempt was settled already (failed or timed out), the next one is due.
            reason, what = "retrying", f"this attempt was settled already and attempt {state.attempt + 1} is due"
        return LeaseLostError(
            f"execution {execution_id}: this lease (version {token.version}) is no longer the holder's: {what}; "
            "drop the task, whatever it would write is refused",
            reason=reason,
            execution_id=execution_id,
        )

    def _check_deadline(self, lease: Lease, config: ComponentConfig, token: TaskToken) -> None:
        """Past the function's timeout, the attempt fails as `timeout` (retried per the policy) and the lease is lost."""
        if token.deadline_ms is None or now_ms() <= token.deadline_ms:
            return
        failure = Failure("timeout", f"attempt {lease.state.attempt} ran past the function's timeout of {config.timeout_ms} ms")
        decision = after_failure(config.retry, lease.state.attempt, failure, now_ms())
        self._settle(lease, token, decision, failure)
        raise LeaseLostError(
            f"execution {lease.id}: {failure.message}; it was recorded as timed out "
            f"({'retried' if isinstance(decision, RetryAt) else 'no attempts left'}), drop the task",
            reason="timed_out",
            execution_id=lease.id,
        )

    def _settle(
        self, lease: Lease, token: TaskToken, decision: RetryAt | Finish, failure: Failure, *, err_value: Any = None
    ) -> Settled:
        """Write the decision with the lease (fenced): a failed attempt and its retry timer, or the finish."""
        entries = self._entries(lease, token)
        try:
            settled = self._write_settled(lease, token, decision, failure, entries, err_value)
        except LeaseLostError:
            self._give_back(self._permit(lease, token))
            raise
        # Written (or lost): the attempt is over. A store that cannot be reached raised above, and the
        # worker sends the same write again; its permit ends with the lease otherwise.
        self._give_back(self._permit(lease, token))
        return settled

    def _write_settled(
        self, lease: Lease, token: TaskToken, decision: RetryAt | Finish, failure: Failure, entries: list[QueueEntry], err_value: Any
    ) -> Settled:
        try:
            if isinstance(decision, RetryAt):
                error: dict[str, Any] = {"error": failure.to_json()}
                if err_value is not None:
                    error["result"] = err_value
                self.leases.fail_attempt(lease, error, decision.at_ms, entries=entries)
                log.info("attempt failed", execution_id=lease.id, attempt=lease.state.attempt, kind=failure.kind)
                return Settled(lease.id, decision.at_ms)
            self.leases.finish(lease, decision.outcome, entries=entries, unless_cancelled=True)
        except FencedError:
            raise self._lost(lease.id, token) from None
        return Settled(lease.id)

    def _permit(self, lease: Lease, token: TaskToken) -> list[Permit]:
        """The permit `token`'s claim holds when its function has a concurrency limit (store/limits.py), as a list of one."""
        if self.gate is None:
            return []
        limits = self.gate.limits().get(lease.state.ffqn)
        if limits is None or limits.max_running is None:
            return []
        return [permit_of(PermitRequest(lease.state.ffqn, lease.id, token.owner, limits))]

    def _give_back(self, permits: list[Permit]) -> None:
        if self.gate is None or not permits:
            return
        try:
            self.gate.permits.release(permits)
        except StoreError as exc:
            log.warning("could not give permits back; they end with their leases", error=str(exc))

    def _finish(self, lease: Lease, entries: list[QueueEntry], outcome: Outcome) -> None:
        try:
            self.leases.finish(lease, outcome, entries=entries, unless_cancelled=True)
        except FencedError:
            pass  # taken over meanwhile: its new holder settles it

    @staticmethod
    def _entries(lease: Lease, token: TaskToken) -> list[QueueEntry]:
        queue = queue_name(lease.state.ffqn, lease.state.priority)
        return [QueueEntry(queue, token.entry_id, lease.id)] if token.entry_id else []



def lease_ms_of(value: object) -> int:
    """A claim's or heartbeat's `lease_ms` (integer ms, MIN_LEASE_MS to MAX_LEASE_MS), or a `UsageError` naming them."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_LEASE_MS <= value <= MAX_LEASE_MS:
        raise UsageError(f"lease_ms: expected an integer from {MIN_LEASE_MS} to {MAX_LEASE_MS}, got {value!r}", path="lease_ms")
    return value
