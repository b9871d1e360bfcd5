"""Run a locked workflow execution: replay, continue, wait or unload, finish."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

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
    StoreUnavailableError,
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
from ..store.leases import Lease, Leases, PendingCommit, QueueEntry
from ..store import outbox
from ..store.records import (
    ATTEMPT_FAILED,
    ATTEMPT_LOST,
    CHILD_SUBMITTED,
    DELAY_REQUESTED,
    JOIN_SET_CREATED,
    PAUSED,
    RESPONSE,
    RESUMED,
    Event,
    ExecutionState,
    Failure,
    Outcome,
    RawEntries,
    decode_entries,
    last_entry_id,
)
from ..store.retention import RETENTION_FIELD, root_fields
from ..wit.limits import DEFAULT_MAX_VALUE_BYTES
from .driver import ContinueAsNew, Target, Unload
from .run_context import RunContext
from .held_logs import HeldLogs
from .replay import Replay
from .sandbox import WorkflowSandbox

log = structlog.get_logger("dolmen.workflow")


class InlineRunner(Protocol):
    """Runs a directly called child at once, in the calling thread: the runner process (the port back up to it)."""

    def run_inline(self, new: NewExecution, parent_tail_after: str, parent_commit: PendingCommit | None = None) -> RawEntries:
        """Run `new`, created locked by this runner; the parent's raw log entries after `parent_tail_after` (opaque here).

        With `parent_commit`, the parent's held-back commit is written with the child's result.
        """
        ...


class Spawner(Protocol):
    """Where join-set children run at once: the runner's own free worker threads (see `LiveDriver._claim`)."""

    owner: str

    def reserve(self, wanted: int) -> int:
        """Take up to `wanted` free worker threads; how many were taken."""
        ...

    def release(self, count: int) -> None:
        """Give back threads taken by `reserve` and not used."""
        ...

    def spawn(self, new: NewExecution) -> None:
        """Run `new`, created locked by `owner`, on a thread taken by `reserve`."""
        ...


class LiveDriver:
    """Writes to the store under the lease; waits in memory or unloads."""

    def __init__(self, executor: WorkflowExecutor, lease: Lease, config: ComponentConfig) -> None:
        self.executor = executor
        self.lease = lease
        self.config = config
        self.eager: list[NewExecution] = []
        # A commit whose only child runs inline next: written with the child's result.
        self.held: PendingCommit | None = None

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        """`Driver.commit` under the lease, with the delays' timers; a commit whose only child runs inline is held back.

        A held commit returns no tail: it is written with the child's result
        (see `runner.held`). Raises `FencedError` and `StoreError` as `Leases.commit` does.
        """
        self.write_held(ctx)
        last = ctx.replay.events[-1].stream_id if ctx.replay.events else "0-0"
        if (
            self.held is None
            and len(creates) == 1
            and creates[0].locked_by is not None
            and not any(event_type == DELAY_REQUESTED for event_type, _, _ in events)
        ):
            self.held = PendingCommit(self.lease, events, creates, last, seen_length=ctx.replay.length)
            self.eager.append(creates[0])
            return []
        timers = [
            outbox.timer_msg(data["until"], outbox.delay_member(ctx.execution_id, ctx.ffqn, data["delay_id"], data["join_set"], ctx.priority))
            for event_type, data, _ in events
            if event_type == DELAY_REQUESTED
        ]
        # Join-set activity children, as many as this runner has free threads, are
        # created locked by it and run here: they skip the queue (its write, its
        # read and a lock). One whose runner dies is queued by its recovery timer.
        spawner = self.executor.spawner
        spawned = self._claim(ctx, creates, spawner) if spawner is not None else 0
        try:
            tail = self.executor.leases.commit(
                self.lease, events, creates, last_seen=last, first_index=ctx.replay.length, messages=timers
            )
        except BaseException:
            if spawner is not None and spawned:
                spawner.release(spawned)
            raise
        for new in creates:
            if new.locked_by is None:
                continue
            if new.state_extra.get("js"):
                spawner.spawn(new)  # type: ignore[union-attr] - only `_claim` locks join-set children
            else:
                self.eager.append(new)
        return tail

    def _claim(self, ctx: RunContext, creates: list[NewExecution], spawner: Spawner) -> int:
        """Lock, in `creates`, as many join-set activity children as `spawner` has threads for; how many."""
        wanted = [
            i for i, new in enumerate(creates)
            if new.kind == "activity" and new.parent == ctx.execution_id and new.state_extra.get("js")
            and new.locked_by is None and not new.not_before and not self.executor.queued_only(new.ffqn)
        ]  # fmt: skip
        taken = spawner.reserve(len(wanted)) if wanted else 0
        ttl = self.executor.eager[1] if self.executor.eager is not None else 0
        for i in wanted[:taken]:
            creates[i] = replace(creates[i], locked_by=spawner.owner, lock_ttl_ms=ttl)
        return taken

    def eager_lock(self, target: Target) -> tuple[str, int] | None:
        """`(owner, lock ttl ms)` for a directly called activity of an in-memory workflow, unless its function is paused
        or limited; else None."""
        # A workflow blocked on a direct activity call has nothing else to do: it
        # creates the child locked by this runner and runs it in this thread.
        eager = self.executor.eager
        if eager is None or target.kind != "activity" or self.config.blocking != "in-memory":
            return None
        if self.executor.queued_only(target.ffqn):
            return None  # queued, where runners leave it until the function is resumed or has room (store/limits.py)
        return eager

    def _run_eager(self, ctx: RunContext) -> list[Event] | None:
        """Run the pre-locked children; the log entries that arrived meanwhile, None if none ran.

        A held commit is written with its child's result: its entries, our own
        requests among them, go into the replay as appended by us.
        """
        inline = self.executor.inline
        if not self.eager or inline is None:
            return None
        last = ctx.replay.events[-1].stream_id if ctx.replay.events else "0-0"
        entries: RawEntries = []
        while self.eager:
            held, self.held = self.held, None
            got = inline.run_inline(self.eager.pop(0), last, held)
            if held is not None:
                ctx.replay.appended(decode_entries(ctx.replay.length, got))
                if got:
                    last = last_entry_id(got)
                continue
            if got:
                entries += got
                last = last_entry_id(got)
        return decode_entries(ctx.replay.length, entries)

    def write_held(self, ctx: RunContext) -> None:
        """Write a held commit on its own (its child will not run inline after all)."""
        held, self.held = self.held, None
        if held is not None:
            got = self.executor.leases.write_pending(held)
            ctx.replay.appended(decode_entries(ctx.replay.length, got))

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        """`Driver.wait`: run pre-locked children first, else wait in memory (up to `blocking_timeout_ms`), else unload.

        Raises `Unload` after releasing the lease (blocked, or paused), and
        `FencedError` when the lease was lost while waiting.
        """
        arrived = self._run_eager(ctx)
        if arrived is not None:
            if self._paused(ctx, arrived):
                self._unload_paused(ctx)
            return arrived
        if self._paused(ctx, []):
            self._unload_paused(ctx)
        soon = not_before is None or not_before - now_ms() < self.config.blocking_timeout_ms
        # Each workflow waiting in memory holds a worker thread: past the cap the
        # rest unload, so the threads their own children need stay free.
        if self.config.blocking == "in-memory" and soon and self.executor.waiting.acquire(blocking=False):
            try:
                deadline = time.monotonic() + self.config.blocking_timeout_ms / 1000
                new: list[Event] = []
                while (remaining := deadline - time.monotonic()) > 0:
                    if self.executor.lost(self.lease.id):
                        raise FencedError(f"lost the lock on {self.lease.id} while waiting", execution_id=self.lease.id)
                    last = ctx.replay.events[-1].stream_id if ctx.replay.events else "0-0"
                    block_ms = max(1, int(min(remaining, 1.0) * 1000))
                    try:
                        new = self.executor.store.events_after(self.lease.id, last, ctx.replay.length, block_ms)
                    except StoreUnavailableError as exc:
                        # Not the workflow's failure: wait on while the lease holds.
                        log.warning("store unreachable while waiting", execution_id=self.lease.id, error=str(exc))
                        time.sleep(min(0.5, max(0.0, remaining)))
                        continue
                    if new:
                        if self._paused(ctx, new):
                            break
                        return new
            finally:
                self.executor.waiting.release()
            if new:  # it was paused while waiting
                self._unload_paused(ctx)
        last = ctx.replay.events[-1].stream_id if ctx.replay.events else "0-0"
        outcome = self.executor.leases.block(self.lease, ctx.replay.length, wake_at=ctx.next_wake(), last_seen=last)
        raise Unload(outcome)

    def _paused(self, ctx: RunContext, arrived: list[Event]) -> bool:
        """Whether the run must stop at this wait: the execution, or its whole function, was paused (store/pauses.py).

        The log tells of an execution's pause (its `paused` event wakes a
        wait in memory too); the runner's list of paused functions of the other.
        """
        marks = [e.type for e in arrived if e.type in (PAUSED, RESUMED)]
        paused = marks[-1] == PAUSED if marks else ctx.replay.paused
        return paused or self.executor.function_paused(ctx.ffqn)

    def _unload_paused(self, ctx: RunContext) -> NoReturn:
        """Release the lease, pending (what it read but did not act on runs on resume), and unload."""
        last = ctx.replay.events[-1].stream_id if ctx.replay.events else "0-0"
        outcome = self.executor.leases.block(self.lease, ctx.replay.length, last_seen=last, paused=True)
        log.info("paused: unloaded", execution_id=self.lease.id, outcome=outcome)
        raise Unload(outcome)

    def resolve(self, ffqn: str) -> Target:
        """`Driver.resolve` in the active revision, semver-compatibly; `NotFoundError` when nothing (or no such
        function) is deployed."""
        revision = self.executor.revisions.active()
        if revision is None:
            raise NotFoundError(f"cannot call {ffqn}: nothing is deployed")
        # An import of ns:pkg/iface@1.0.0 may be served by a deployed @1.2.0 (semver-compatible).
        return Target.of_route(revision, revision.route_compatible(ffqn))


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
        except Unload:
            self.held.keep(state.id, ctx.replay.events)
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
