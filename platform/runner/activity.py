"""Run a locked activity execution: one attempt in a fresh instance."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from ..metrics import RunnerMetrics
from ..errors import FencedError, NotFoundError, SecretUnavailableError, StoreError
from ..ffqn import Ffqn
from ..store.clock import now_ms
from ..store.write_calls import FinishWrite, finish_write
from ..store.leases import Lease, Leases, PendingCommit, QueueEntry
from ..store.records import ExecutionState, Failure, Outcome
from ..wasm.activity_host import ActivityFailed, ActivityLimits
from ..wasm.egress import EgressPolicy
from ..wit.limits import DEFAULT_MAX_VALUE_BYTES
from ..wit.types import ResultT
from .attempts import RunningAttempts
from .batching import AttemptDurations
from ..execution.components import ComponentProvider
from .held import Held
from ..execution.retry import Finish, RetryAt, after_failure, after_return
from .secrets import RunnerSecrets, SecretSource, resolve_env

log = structlog.get_logger("dolmen.runner")


class ActivityExecutor:
    """Runs activity leases for a runner process."""

    def __init__(
        self,
        leases: Leases,
        provider: ComponentProvider,
        *,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        secrets: SecretSource | None = None,
        attempts: RunningAttempts | None = None,
        durations: AttemptDurations | None = None,
        metrics: RunnerMetrics | None = None,
    ) -> None:
        self.leases = leases
        # The runner's counters (guest failures by kind); None counts nothing.
        self.metrics = metrics
        # How long attempts take per function, for batching short ones (see `batching`).
        self.durations = AttemptDurations() if durations is None else durations
        # Where cancellations find the running attempts (see `attempts`).
        self.attempts = RunningAttempts() if attempts is None else attempts
        self.provider = provider
        self.max_value_bytes = max_value_bytes
        # Where `{secret: NAME}` env values come from: by default this process's environment and secrets file.
        self.secrets = RunnerSecrets() if secrets is None else secrets

    def run(
        self,
        lease: Lease,
        entries: list[QueueEntry],
        *,
        clear_timer: dict[str, object] | None = None,
        parent_tail_after: str | None = None,
        held: Held | None = None,
    ) -> list[Any]:
        """One attempt; returns the parent's log entries after `parent_tail_after` once finished.

        `clear_timer` is the recovery timer of a pre-locked execution. `held`
        is the parent's commit that creates this execution, held back: written
        with the result when the attempt settles it, else first (see `held`);
        the entries returned then start after the commit's `last_seen`. A
        lease lost meanwhile (`FencedError`) is logged and returns nothing;
        `StoreError` when the store does not take the write (the lease then
        expires and another runner takes the execution over).
        """
        attempted = self.attempt(lease.state)
        if held is None:
            return self._write(lease, attempted, entries, clear_timer=clear_timer, parent_tail_after=parent_tail_after)
        pending = held.take()
        if pending is not None and isinstance(attempted.decision, Finish):
            return self._write(lease, attempted, entries, clear_timer=None, parent_tail_after=held.last_seen, parent_commit=pending)
        if pending is not None:
            # To be retried: the parent's commit creates it first, as if it had not been held.
            committed = self.leases.write_pending(pending)
        else:
            committed = held.written()  # it ran long: written meanwhile
        if isinstance(attempted.decision, Finish):
            # The tail after `last_seen` holds the request and the response; a refused
            # finish returns none, and the parent still learns of its written request.
            tail = self._write(lease, attempted, entries, clear_timer=clear_timer, parent_tail_after=held.last_seen)
            return tail or committed
        return committed + self._write(lease, attempted, entries, clear_timer=clear_timer, parent_tail_after=None)

    def run_batch(self, done: list[tuple[Lease, list[QueueEntry], Attempted]]) -> list[StoreError | None]:
        """Write what the attempts of a batch came to (lease, its queue entries, `attempt`'s result); per item None, or the `StoreError`.

        Finished ones go in one round trip (`Leases.finish_many`); one to be
        retried is written on its own. A lease lost meanwhile (`FencedError`)
        is logged and counts as done, as in `run`.
        """
        out: list[StoreError | None] = [None] * len(done)
        finishing: list[int] = []
        writes: list[FinishWrite] = []
        for i, (lease, entries, attempted) in enumerate(done):
            decision = attempted.decision
            if isinstance(decision, Finish):
                finishing.append(i)
                writes.append(finish_write(lease, decision.outcome, entries=entries, **attempted.finish_options()))
                continue
            try:
                self._write(lease, attempted, entries, clear_timer=None, parent_tail_after=None)
            except StoreError as exc:
                out[i] = exc
        for i, error in zip(finishing, self.leases.finish_many(writes)):
            if isinstance(error, FencedError):
                log.warning("lease lost; another runner owns this execution now", execution_id=done[i][0].id, error=str(error))
            else:
                out[i] = error
        return out

    def attempt(self, state: ExecutionState) -> Attempted:
        """Run the guest once and decide what to write (its wall time is counted in `durations`)."""
        started = time.monotonic()
        try:
            attempted = self._attempt(state)
        finally:
            self.durations.observe(state.ffqn, time.monotonic() - started)
        if attempted.failure is not None and self.metrics is not None:
            self.metrics.failures.labels(state.kind, attempted.failure.kind).inc()
        return attempted

    def _attempt(self, state: ExecutionState) -> Attempted:
        if state.cancel_requested:
            return Attempted(Finish(Outcome(failure=Failure("cancelled", "cancelled before it ran"))))
        try:
            config = self.provider.config_for(state)
            signature = config.functions[state.ffqn]
            host = self.provider.activity_host(state.digest)
            # Checked when deployed; a pattern this version cannot read fails the attempt (ValueError).
            egress = EgressPolicy.allowing(
                config.allowed_hosts,
                grant=f"list {{pattern}} under allowed_hosts of component '{config.name}' in the deployment to allow it",
            )
        except (NotFoundError, KeyError, ValueError) as exc:
            return Attempted(Finish(Outcome(failure=Failure("trap", f"cannot run {state.ffqn}: {exc}"))))
        try:
            env, masker = resolve_env(config.env, self.secrets)
        except SecretUnavailableError as exc:
            # A failed attempt, retried per the policy: the secret may be provided meanwhile, or another runner have it.
            failure = Failure(exc.code, f"cannot run {state.ffqn} of component '{config.name}': {exc}")
            decision = after_failure(config.retry, state.attempt, failure, now_ms())
            log.warning("secret unavailable", execution_id=state.id, ffqn=state.ffqn, secret=exc.secret, error=failure.message)
            return Attempted(decision, failure)
        limits = ActivityLimits(
            timeout_ms=config.timeout_ms,
            memory_bytes=config.memory_limit_bytes,
            env=env,
            reuse_instances=config.instances == "reuse",
            max_instance_uses=config.max_instance_uses,
            max_value_bytes=self.max_value_bytes,
            egress=egress,
        )
        started = now_ms()
        try:
            with self.attempts.attempt(state.id, limits.timeout_ms) as interruption:
                outcome = host.call(Ffqn.parse(state.ffqn), signature, state.params, limits, interruption)
        except ActivityFailed as failed:
            # Secret values never reach the log: masked in the message (it quotes stderr) and the output.
            failure = Failure(failed.error.kind, masker.text(failed.error.message))
            if failure.kind == "cancelled":
                decision: RetryAt | Finish = Finish(Outcome(failure=failure))  # stopped on purpose: final
            else:
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
            return Attempted(decision, failure, masker.output(failed.output))
        decision = after_return(
            config.retry, state.attempt, outcome.result, isinstance(signature.result, ResultT), now_ms()
        )
        log.debug("attempt done", execution_id=state.id, ffqn=state.ffqn, ms=now_ms() - started)
        failure = Failure("err", "returned err") if isinstance(decision, RetryAt) else None
        # The result is the guest's data, written as returned: a secret it returns is stored (see README).
        return Attempted(decision, failure, masker.output(outcome.output), outcome.result)

    def _write(
        self,
        lease: Lease,
        attempted: Attempted,
        entries: list[QueueEntry],
        *,
        clear_timer: dict[str, object] | None,
        parent_tail_after: str | None,
        parent_commit: PendingCommit | None = None,
    ) -> list[Any]:
        decision, output = attempted.decision, attempted.output
        try:
            if isinstance(decision, RetryAt):
                error: dict[str, object] = {"error": (attempted.failure or Failure("trap", "")).to_json()}
                if attempted.err_value is not None:
                    error["result"] = attempted.err_value
                if output:
                    error["output"] = output
                self.leases.fail_attempt(lease, error, decision.at_ms, entries=entries)
                return []
            return self.leases.finish(
                lease,
                decision.outcome,
                entries=entries,
                **attempted.finish_options(),
                clear_timer=clear_timer,
                parent_tail_after=parent_tail_after,
                parent_commit=parent_commit,
            )
        except FencedError as exc:
            log.warning("lease lost; another runner owns this execution now", execution_id=lease.id, error=str(exc))
            return []


@dataclass(frozen=True, slots=True)
class Attempted:
    """What an attempt came to: the decision, and what to record with it."""

    decision: RetryAt | Finish
    failure: Failure | None = None
    output: dict[str, str] | None = None
    err_value: object = None

    def finish_options(self) -> dict[str, Any]:
        """How a finish records it: its output, and a cancellation requested meanwhile wins."""
        return {"extra": {"output": self.output} if self.output else None, "unless_cancelled": True}
