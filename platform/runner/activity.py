"""Run a locked activity execution: one attempt in a fresh instance."""

from __future__ import annotations

from typing import Any

import structlog

from ..errors import FencedError, NotFoundError
from ..ffqn import Ffqn
from ..store.executions import now_ms
from ..store.leases import Lease, Leases, QueueEntry
from ..store.records import Failure, Outcome
from ..wasm.activity_host import ActivityFailed, ActivityLimits
from ..wit.types import ResultT
from .components import ComponentProvider
from .retry import Finish, RetryAt, after_failure, after_return

log = structlog.get_logger("dolmen.runner")


class ActivityExecutor:
    """Runs activity leases for a runner process."""

    def __init__(self, leases: Leases, provider: ComponentProvider) -> None:
        self.leases = leases
        self.provider = provider

    def run(
        self,
        lease: Lease,
        entries: list[QueueEntry],
        *,
        clear_timer: dict[str, object] | None = None,
        parent_tail_after: str | None = None,
    ) -> list[Any]:
        """One attempt; returns the parent's log entries after `parent_tail_after` once finished.

        `clear_timer` is the recovery timer of a pre-locked execution.
        """
        tail = {"after": parent_tail_after, "entries": []}
        state = lease.state
        if state.cancel_requested:
            self._write(lease, Finish(Outcome(failure=Failure("cancelled", "cancelled before it ran"))), entries, clear_timer=clear_timer, tail=tail)
            return tail["entries"]
        try:
            config = self.provider.config_for(state)
            signature = config.functions[state.ffqn]
            host = self.provider.activity_host(state.digest)
        except (NotFoundError, KeyError) as exc:
            self._write(lease, Finish(Outcome(failure=Failure("trap", f"cannot run {state.ffqn}: {exc}"))), entries, clear_timer=clear_timer, tail=tail)
            return tail["entries"]
        limits = ActivityLimits(timeout_ms=config.timeout_ms, memory_bytes=config.memory_limit_bytes, env=config.env)
        started = now_ms()
        try:
            outcome = host.call(Ffqn.parse(state.ffqn), signature, state.params, limits)
        except ActivityFailed as failed:
            failure = Failure(failed.error.kind, failed.error.message)
            decision = after_failure(config.retry, state.attempt, failure, now_ms())
            log.info(
                "attempt failed",
                execution_id=state.id,
                ffqn=state.ffqn,
                attempt=state.attempt,
                kind=failure.kind,
                error=failure.message,
                retry=isinstance(decision, RetryAt),
            )
            self._write(lease, decision, entries, failure=failure, output=failed.output, clear_timer=clear_timer, tail=tail)
            return tail["entries"]
        decision = after_return(
            config.retry, state.attempt, outcome.result, isinstance(signature.result, ResultT), now_ms()
        )
        log.debug("attempt done", execution_id=state.id, ffqn=state.ffqn, ms=now_ms() - started)
        failure = Failure("err", "returned err") if isinstance(decision, RetryAt) else None
        self._write(lease, decision, entries, failure=failure, output=outcome.output, err_value=outcome.result, clear_timer=clear_timer, tail=tail)
        return tail["entries"]

    def _write(
        self,
        lease: Lease,
        decision: RetryAt | Finish,
        entries: list[QueueEntry],
        *,
        failure: Failure | None = None,
        output: dict[str, str] | None = None,
        err_value: object = None,
        clear_timer: dict[str, object] | None = None,
        tail: dict[str, Any] | None = None,
    ) -> None:
        try:
            if isinstance(decision, RetryAt):
                error: dict[str, object] = {"error": (failure or Failure("trap", "")).to_json()}
                if err_value is not None:
                    error["result"] = err_value
                if output:
                    error["output"] = output
                self.leases.fail_attempt(lease, error, decision.at_ms, entries=entries)
            else:
                entries_after = self.leases.finish(
                    lease,
                    decision.outcome,
                    entries=entries,
                    extra={"output": output} if output else None,
                    unless_cancelled=True,
                    clear_timer=clear_timer,
                    parent_tail_after=tail["after"] if tail else None,
                )
                if tail is not None:
                    tail["entries"] = entries_after
        except FencedError as exc:
            log.warning("lease lost; another runner owns this execution now", execution_id=lease.id, error=str(exc))
