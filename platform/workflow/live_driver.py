"""The live driver of a workflow run: its writes under the lease, and its waits in memory or unloads.

`WorkflowExecutor` (executor.py) makes one per run. It reaches the runner
process only through two ports, `InlineRunner` (run a directly called
activity at once, in the calling thread) and `Spawner` (run join-set
children on the runner's free threads).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import structlog

from ..model import ComponentConfig
from ..errors import FencedError, NotFoundError, StoreUnavailableError
from ..store.creates import NewExecution
from ..store.clock import now_ms
from ..store.leases import Lease, PendingCommit
from ..store import outbox
from ..store.records import DELAY_REQUESTED, PAUSED, RESUMED, Event, RawEntries, decode_entries, last_entry_id
from .driver import Target, Unload
from .run_context import RunContext

if TYPE_CHECKING:
    from .executor import WorkflowExecutor

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
        raise Unload(self._release(ctx, wake_at=ctx.next_wake()))

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
        outcome = self._release(ctx, paused=True)
        log.info("paused: unloaded", execution_id=self.lease.id, outcome=outcome)
        raise Unload(outcome)

    def _release(self, ctx: RunContext, *, wake_at: int | None = None, paused: bool = False) -> str:
        """Keep the log this run read (`HeldLogs`), then release the lease (`Leases.block`); its outcome.

        Kept first: the write that releases it may be answered after the
        execution was woken and locked again, by another thread of this
        runner, which then reads only the log's tail. A kept log the release
        then fails for is harmless: a lock checks it is the log's start.
        Raises what `Leases.block` raises.
        """
        self.executor.held.keep(self.lease.id, ctx.replay.events)
        last = ctx.replay.events[-1].stream_id if ctx.replay.events else "0-0"
        return self.executor.leases.block(self.lease, ctx.replay.length, wake_at=wake_at, last_seen=last, paused=paused)

    def resolve(self, ffqn: str) -> Target:
        """`Driver.resolve` in the active revision, semver-compatibly; `NotFoundError` when nothing (or no such
        function) is deployed."""
        revision = self.executor.revisions.active()
        if revision is None:
            raise NotFoundError(f"cannot call {ffqn}: nothing is deployed")
        # An import of ns:pkg/iface@1.0.0 may be served by a deployed @1.2.0 (semver-compatible).
        return Target.of_route(revision, revision.route_compatible(ffqn))
