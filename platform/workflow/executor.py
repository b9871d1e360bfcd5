"""Run a locked workflow execution: replay, continue, wait or unload, finish."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from ..model import ComponentConfig
from ..errors import (
    CancelledError,
    ChildFailedError,
    ComponentError,
    DolmenError,
    ContinueAsNewError,
    ExecutionTimeoutError,
    FencedError,
    HistoryLimitError,
    NonDeterminismError,
    NotFoundError,
    StoreError,
    TrapError,
    ValueTooLargeError,
)
from ..execution.components import ComponentProvider, spare_instances
from ..execution.retry import Finish, RetryAt, after_failure
from ..store.deployments import RevisionCache
from ..ids import ExecutionId
from ..store.executions import ExecutionStore
from ..store.creates import NewExecution
from ..store.clock import now_ms
from ..store.leases import Lease, Leases, QueueEntry
from ..store.records import (
    ATTEMPT_FAILED,
    ATTEMPT_LOST,
    CHILD_SUBMITTED,
    JOIN_SET_CREATED,
    RESPONSE,
    ExecutionState,
    Failure,
    Outcome,
)
from ..store.retention import RETENTION_FIELD, root_fields
from ..wit.limits import DEFAULT_MAX_VALUE_BYTES
from .driver import ContinueAsNew, Target, Unload
from .run_context import RunContext
from .held_logs import HeldLogs
from .replay import Replay
from .live_driver import InlineRunner, LiveDriver, Spawner
from .sandbox import WorkflowSandbox

log = structlog.get_logger("dolmen.workflow")


class WorkflowExecutor:
    """Runs workflow leases for a runner process."""

    def __init__(
        self,
        store: ExecutionStore,
        leases: Leases,
        provider: ComponentProvider,
        revisions: RevisionCache,
        lost: Callable[[str], bool],
        inline: InlineRunner | None = None,
        eager: tuple[str, int] | None = None,
        max_waiting: int = 8,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        spawner: Spawner | None = None,
        function_paused: Callable[[str], bool] | None = None,
        function_limited: Callable[[str], bool] | None = None,
        replayed: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.leases = leases
        self.provider = provider
        self.revisions = revisions
        self.lost = lost
        self.inline = inline
        self.eager = eager if inline is not None else None
        self.spawner = spawner if self.eager is not None else None
        # Whether a function is paused as a whole (store/pauses.py): its children are not run here at once.
        self.function_paused = function_paused or (lambda ffqn: False)
        # Whether a function has platform-wide limits (store/limits.py): its children go through the queue.
        self.function_limited = function_limited or (lambda ffqn: False)
        # Told the seconds each run spent replaying its log (a metric).
        self.replayed = replayed
        self.sandbox = WorkflowSandbox(spares=spare_instances())
        # How many workflows may wait in memory at once (each holds a thread).
        self.waiting = threading.BoundedSemaphore(max(1, max_waiting))
        self.max_value_bytes = max_value_bytes
        # Logs of the workflows this runner unloaded, for tail reads when it resumes them.
        self.held = HeldLogs()

    def queued_only(self, ffqn: str) -> bool:
        """Whether children of `ffqn` must go through its queue rather than run here at once: paused, or limited."""
        return self.function_paused(ffqn) or self.function_limited(ffqn)

    def close(self) -> None:
        """Free the spare instances."""
        self.sandbox.close()

    def run(self, lease: Lease, entries: list[QueueEntry]) -> None:
        """Run one step of the workflow `lease` holds: replay, go on live, then finish, continue, fail or unload.

        Guest and replay failures are recorded in the log (final or retried
        per the retry policy); a lost lease is logged. Raises `StoreError`
        when the store fails: the lease then expires and the run is taken over.
        """
        state = lease.state
        if lease.tail_only:
            self.held.tail_reads += 1
        replay = Replay(state.id, lease.events if lease.events is not None else self.store.events(state.id))
        try:
            config = self.provider.config_for(state)
        except NotFoundError as exc:
            self._finish(lease, Outcome(failure=Failure("trap", str(exc))), entries)
            return
        ctx = RunContext(
            state.id,
            state.ffqn,
            replay,
            LiveDriver(self, lease, config),
            revision=state.revision,
            max_value_bytes=self.max_value_bytes,
            history=config.history,
            tags=state.tags,
            priority=state.priority,
        )
        if state.cancel_requested or replay.cancel_requested:
            self._cancel(lease, replay, entries)
            return
        try:
            loaded = self.provider.load("workflow", state.digest)
            continued: list[Any] | None = None
            try:
                value = self.sandbox.invoke(
                    loaded,
                    ctx,
                    timeout_ms=config.timeout_ms,
                    memory_bytes=config.memory_limit_bytes,
                    reuse=config.max_instance_uses if config.instances == "reuse" else 0,
                    on_caught_up=self._replay_clock(replay),
                )
            except ContinueAsNew as cont:
                value, continued = None, cont.params
            for child in ctx.closing():
                self.store.cancel(child, "its join set was closed with closing strategy 'cancel'")
            if continued is None:
                self._finish(lease, Outcome(value=value), entries, ctx.replay)
            else:
                self._continue(lease, continued, entries, ctx.replay)
        except Unload:  # its log is held already (`LiveDriver._release`)
            self.leases.ack(entries)
        except CancelledError:
            self._cancel(lease, ctx.replay, entries)
        except NonDeterminismError as exc:
            message = str(exc)
            if config.instances == "reuse":
                message += (
                    "; this component reuses instances (instances: reuse), so what its code keeps between"
                    " executions (module globals, Python's `random`) can make a replay differ:"
                    " see README \"Reused workflow instances\", or deploy it with instances: fresh"
                )
            log.warning("non-determinism", execution_id=state.id, ffqn=state.ffqn, error=message)
            self._finish(lease, Outcome(failure=Failure("non_determinism", message)), entries, ctx.replay)
        except ChildFailedError as exc:
            self._finish(lease, Outcome(failure=Failure("child_failed", str(exc))), entries, ctx.replay)
        except (ValueTooLargeError, HistoryLimitError, ContinueAsNewError) as exc:
            # Final: replaying the same code makes the same value (or log, or request) again.
            self._finish(lease, Outcome(failure=Failure(exc.kind, str(exc))), entries, ctx.replay)
        except FencedError as exc:
            log.warning("lease lost", execution_id=state.id, error=str(exc))
        except StoreError:
            # Not the guest's failure: its lease expires and the run is retried
            # (a takeover counts it as lost) instead of recording a trap.
            raise
        except (TrapError, ExecutionTimeoutError, ComponentError, NotFoundError) as exc:
            kind = "timeout" if isinstance(exc, ExecutionTimeoutError) else "trap"
            self._failed(lease, config, ctx.replay, Failure(kind, str(exc)), entries)
        except DolmenError as exc:
            self._failed(lease, config, ctx.replay, Failure("trap", str(exc)), entries)

    def _replay_clock(self, replay: Replay) -> Callable[[], None] | None:
        """What tells `replayed` how long this run replayed, once it caught up with its log (None: nothing to replay)."""
        replayed = self.replayed
        if replayed is None or not replay.replaying:
            return None
        started = time.perf_counter()
        return lambda: replayed(time.perf_counter() - started)

    def _finish(self, lease: Lease, outcome: Outcome, entries: list[QueueEntry], replay: Replay | None = None) -> None:
        try:
            self.leases.finish(lease, outcome, entries=entries, log_seen=_log_seen(replay))
        except FencedError as exc:
            log.warning("lease lost before finishing", execution_id=lease.id, error=str(exc))

    def _continue(self, lease: Lease, params: list[Any], entries: list[QueueEntry], replay: Replay) -> None:
        """Finish as continued, creating the chain's next execution in the same write (unless cancelled meanwhile)."""
        state = lease.state
        target = self._continuation_target(state)
        chain = state.extra.get("chain") or state.id
        index = int(state.extra.get("chain_index") or 0) + 1
        links = {"continued_from": state.id, "chain": chain}
        successor = NewExecution(
            id=ExecutionId.new().value,
            ffqn=state.ffqn,
            kind="workflow",
            digest=target.digest,
            params=params,
            revision=target.revision,
            component=target.component,
            created_extra={**links, "chain_index": index},
            state_extra={**links, "chain_index": str(index), **root_fields(target.retention_ms)},
            tags=state.tags,
            priority=state.priority,
        )
        log.info("continued as new", execution_id=state.id, successor=successor.id, chain=chain, chain_index=index)
        try:
            self.leases.finish(
                lease,
                Outcome(continued_as=successor.id),
                entries=entries,
                extra={"params": params},
                unless_cancelled=True,
                continue_with=successor,
                log_seen=_log_seen(replay),
            )
        except FencedError as exc:
            log.warning("lease lost before continuing as new", execution_id=lease.id, error=str(exc))

    def _continuation_target(self, state: ExecutionState) -> Target:
        """Where the next execution of a chain runs: the function's deployed version, else this one's.

        A fresh log has nothing to replay, so it starts on what is deployed now;
        a function no longer deployed carries on with the component it ran on.
        """
        revision = self.revisions.active()
        if revision is not None:
            try:
                route = revision.route(state.ffqn)
            except NotFoundError:
                pass
            else:
                if route.kind == "workflow":
                    return Target.of_route(revision, route)
        recorded = state.extra.get(RETENTION_FIELD)
        return Target(
            state.ffqn, "workflow", state.digest, state.revision, state.component, int(recorded) if recorded else None
        )

    def _failed(
        self, lease: Lease, config: ComponentConfig, replay: Replay, failure: Failure, entries: list[QueueEntry]
    ) -> None:
        failures = 1 + sum(1 for e in replay.events if e.type in (ATTEMPT_FAILED, ATTEMPT_LOST))
        decision = after_failure(config.retry, failures, failure, now_ms())
        log.warning("workflow attempt failed", execution_id=lease.id, kind=failure.kind, error=failure.message, attempt=failures)
        try:
            if isinstance(decision, RetryAt):
                self.leases.fail_attempt(lease, {"error": failure.to_json()}, decision.at_ms, entries=entries)
            elif isinstance(decision, Finish):
                self.leases.finish(lease, decision.outcome, entries=entries, log_seen=_log_seen(replay))
        except FencedError as exc:
            log.warning("lease lost", execution_id=lease.id, error=str(exc))

    def _cancel(self, lease: Lease, replay: Replay, entries: list[QueueEntry]) -> None:
        """Cancel the children still running, as their closing strategies say, then finish as cancelled.

        Directly called children and those of join sets with closing strategy
        `cancel` are cancelled (a child workflow cancels its own children in
        turn); those of `complete` join sets are left to finish.
        """
        answered = {e.data.get("child_id") for e in replay.events if e.type == RESPONSE}
        closing = {e.data["join_set"]: e.data.get("closing") for e in replay.events if e.type == JOIN_SET_CREATED}
        left: list[str] = []
        for event in replay.events:
            if event.type != CHILD_SUBMITTED or event.data["child_id"] in answered:
                continue
            child: str = event.data["child_id"]
            join_set = event.data.get("join_set")
            if join_set is None or closing.get(join_set) == "cancel":
                self.store.cancel(child, f"its parent {lease.id} was cancelled")
            else:
                left.append(child)
        message = "the workflow was cancelled"
        if left:
            message += f"; {len(left)} children of join sets with closing strategy 'complete' were left to finish"
        self._finish(lease, Outcome(failure=Failure("cancelled", message)), entries, replay)


def _log_seen(replay: Replay | None) -> tuple[str, int] | None:
    """The last stream id of the log a run read and how many entries that is (see `Leases.finish`)."""
    if replay is None or not replay.events:
        return None
    return replay.events[-1].stream_id, replay.length
