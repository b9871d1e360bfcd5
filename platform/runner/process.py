"""The runner process: pulls executions from the queues and runs them.

One reader thread reads the queues of every function that can still have
work (one XREADGROUP over all of them; see `reading`) and hands entries to a pool of worker threads.
Wasm runs with the GIL released, so activities run in parallel; a runner
that dies leaves its entries pending, and the others reclaim them once its
locks have expired. A lock-keeper thread extends the locks this runner holds,
and a cancellation request stops the attempt it concerns (see `attempts`).
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from ..config import env_int
from ..log import bound
from ..model import RetryPolicy
from ..errors import FencedError, NotFoundError, StoreError
from ..store.heartbeats import Heartbeat
from ..metrics import RunnerMetrics
from ..store.cancel_watch import CancelWatcher
from ..store.connection import connect, wait_for_store, wait_until_reachable
from ..store.deployments import DeploymentStore, RevisionCache
from ..store.deliveries import Deliveries
from ..store.executions import ExecutionStore
from ..store.creates import NewExecution
from ..store.clock import now_ms
from ..store.group import GroupCommit
from ..store.leases import Lease, Leases, PendingCommit, QueueEntry
from ..store.limits import LimitGate, Permit, active_limits
from ..store.records import ExecutionState, Failure
from ..store.scripts import Scripts
from ..workflow.executor import WorkflowExecutor
from .held_leases import HeldLeases
from .activity import ActivityExecutor, Attempted
from .attempts import RunningAttempts
from .batching import AttemptDurations, plan
from .collector import settle_garbage_collector
from ..execution.components import ComponentProvider
from .held import HeldCommits
from .queues import QueueSelection
from .reading import QueueReader
from .settings import RunnerSettings
from ..execution.retry import RetryAt, after_failure, after_lock

log = structlog.get_logger("dolmen.runner")


class Runner:
    """Runs activities and workflows from the queues.

    Made from `RunnerSettings` (connecting raises `ConfigError` for a
    malformed URL, `StoreAccessError` when the store refuses it). It is also
    the workflow executor's `Spawner` and `InlineRunner` (`reserve`/`spawn`/
    `release`, `run_inline`).
    """

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self.client = connect(settings.redis_url)
        scripts = Scripts(self.client)
        self.deliveries = Deliveries(scripts)
        self.store = ExecutionStore(self.client, scripts, self.deliveries)
        group = GroupCommit(scripts, self.deliveries) if env_int("DOLMEN_GROUP_COMMIT") else None
        self.leases = Leases(self.client, scripts, deliveries=self.deliveries, group=group)
        self.deployments = DeploymentStore(self.client)
        self.revisions = RevisionCache(self.deployments)
        self.provider = ComponentProvider(settings.data_dir, self.deployments, self.revisions)
        # Platform-wide limits per function (store/limits.py): those of the active revision.
        self.gate = LimitGate(scripts, active_limits(self.revisions))
        self._permits: dict[str, Permit] = {}
        self.metrics = RunnerMetrics()
        self.owner = settings.name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.held_commits = HeldCommits(self.leases, settings.inline_hold_ms)
        # The attempts running here, for cancellations to stop (see `attempts`).
        self.attempts = RunningAttempts()
        # Attempt times per function: short activities run in batches (see `batching`).
        self.durations = AttemptDurations()
        selection = QueueSelection(self.client, self.deployments, self.revisions, lambda: self.leases.scripts.shards)
        self.reader = QueueReader(
            self.client, self.leases, selection, self.revisions, self.gate, self.durations,
            owner=self.owner, block_ms=settings.read_block_ms, forget=self._forget,
        )  # fmt: skip
        self.activities = ActivityExecutor(
            self.leases,
            self.provider,
            max_value_bytes=settings.max_value_bytes,
            attempts=self.attempts,
            durations=self.durations,
            metrics=self.metrics,
        )
        self.workflows = WorkflowExecutor(
            self.store,
            self.leases,
            self.provider,
            self.revisions,
            self.is_lost,
            inline=self,
            eager=(self.owner, settings.lock_ttl_ms),
            max_waiting=max(1, settings.concurrency // 2),
            max_value_bytes=settings.max_value_bytes,
            spawner=self,
            function_paused=self.reader.function_paused,
            function_limited=self.gate.limited,
            replayed=self.metrics.replays.observe,
        )
        self.held_leases = HeldLeases(self.leases, self.gate, self.attempts, self._permits, settings.lock_ttl_ms)
        self._inflight = 0
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="dolmen-run")
        self.processed = 0
        self.batched = 0  # attempts run in batches (see `batching`)

    # ------------------------------------------------------------- serving

    def serve(self, stop: threading.Event) -> None:
        """Read, lock and run executions until `stop` is set, then wait for the running ones and close everything.

        Raises at start what `wait_until_reachable` raises (`StoreUnavailableError`
        after 30 s), `ConfigError` for a `DOLMEN_SHARDS` the store does not
        hold, and `StoreError` when the first heartbeat cannot be written;
        later store errors are logged and the loop goes on.
        """
        # Started next to a server that is still loading its data: wait for it.
        wait_until_reachable(self.client)
        self.leases.scripts.shards  # noqa: B018 - read (or set, on an empty store) before any work; a wrong DOLMEN_SHARDS stops here
        self.leases.stopping = stop  # writes waiting for a full store give up when the runner stops
        beat = Heartbeat(self.client, "runner", self._details, metrics=self.metrics.snapshot).start()
        keeper = threading.Thread(target=self.held_leases.keep, args=(stop,), name="dolmen-locks", daemon=True)
        keeper.start()
        cancels = CancelWatcher(self.client, self.attempts.cancel).start()
        log.info("runner started", owner=self.owner, concurrency=self.settings.concurrency)
        last_reclaim = 0.0
        try:
            while not stop.is_set():
                free = self._wait_for_slot(stop)
                if free == 0:
                    continue
                try:
                    names = self.reader.names()
                    entries: list[QueueEntry] = []
                    if time.monotonic() - last_reclaim > self.settings.lock_ttl_ms / 2000:
                        last_reclaim = time.monotonic()
                        for name in names:
                            entries += self.leases.reclaim(self.owner, name, self.settings.lock_ttl_ms + 1000, count=free)
                    if not entries:
                        if not names:
                            # Nothing to read until a function held back by its limits is due again (or a deploy).
                            stop.wait(self.gate.wait_ms(self.settings.read_block_ms) / 1000)
                            continue
                        entries = self.reader.read(names, free)
                    locked = self._lock(entries)
                except StoreError as exc:
                    log.error("store unavailable", error=str(exc))
                    stop.wait(1.0)
                    continue
                work = plan(locked, self._batchable, free)
                for entry, lease in work.singles:
                    self._dispatch(entry, lease)
                for batch in work.batches:
                    self._dispatch_batch(batch)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=False)
            cancels.stop()
            self.held_commits.close()
            self.workflows.close()
            self.deliveries.close()
            if self.leases.group is not None:
                self.leases.group.close()
            beat.stop()
            self.provider.close()
            log.info("runner stopped", processed=self.processed)

    def _wait_for_slot(self, stop: threading.Event) -> int:
        with self._cond:
            while self._inflight >= self.settings.concurrency and not stop.is_set():
                self._cond.wait(0.5)
            return 0 if stop.is_set() else self.settings.concurrency - self._inflight

    def _batchable(self, item: tuple[QueueEntry, Lease]) -> bool:
        state = item[1].state
        return state.kind == "activity" and self.durations.is_short(state.ffqn)

    def _dispatch(self, entry: QueueEntry, lease: Lease) -> None:
        with self._cond:
            self._inflight += 1
        # Held from now: queued behind other work (a read may bring more than there are free threads), its lock is kept alive.
        self.held_leases.hold(lease)
        self._pool.submit(self._process, entry, lease)

    def _dispatch_batch(self, batch: list[tuple[QueueEntry, Lease]]) -> None:
        with self._cond:
            self._inflight += 1
        # Held from now: queued behind other work, their locks are still kept alive.
        for _, lease in batch:
            self.held_leases.hold(lease)
        self._pool.submit(self._process_batch, batch)

    def _lock(self, entries: list[QueueEntry]) -> list[tuple[QueueEntry, Lease]]:
        """Lock what was read, in one round trip; the entries whose lock was granted, with their leases.

        Locked here rather than by each worker thread: one pipeline for the
        whole read, and no thread waits on another's round trip. A refused lock
        is handled at once: a live lease keeps its entry pending, so it is
        reclaimed and tried again once that lease may have expired (the fast
        way back from a runner that hung); anything else is moved on by its
        holder, its timer or the repair sweep, so the entry is acked. A lock
        the store refused (full) leaves its entry pending, reclaimed later.
        """
        if not entries:
            return []
        # Entries of limited functions without a permit go back to their queues (store/limits.py).
        entries, permits = self.gate.admit(entries, self.owner, self.settings.lock_ttl_ms)
        if not entries:
            return []
        # The logs of workflows this runner unloaded: their locks read only what came after.
        known = [self.workflows.held.take(entry.execution_id) for entry in entries]
        try:
            results = self.leases.lock_many(
                [(entry.execution_id, log_) for entry, log_ in zip(entries, known)], self.owner, self.settings.lock_ttl_ms
            )
        except StoreError:
            for entry, log_ in zip(entries, known):
                if log_ is not None:
                    self.workflows.held.keep(entry.execution_id, log_)
            self._give_back(list(permits.values()))
            raise
        granted: list[tuple[QueueEntry, Lease]] = []
        done: list[QueueEntry] = []
        for entry, log_, result in zip(entries, known, results):
            if isinstance(result, Lease):
                granted.append((entry, result))
                if result.state.took_over:
                    self.metrics.takeovers.labels(result.state.kind).inc()
                continue
            if log_ is not None and (
                isinstance(result, StoreError) or result.reason in ("locked", "early", "blocked", "paused")
            ):
                self.workflows.held.keep(entry.execution_id, log_)
            if isinstance(result, StoreError):
                log.error("store refused a lock", execution_id=entry.execution_id, error=str(result))
            elif result.reason != "locked":
                done.append(entry)
        if permits:
            locked = {lease.id for _, lease in granted}
            for lease_id in locked & permits.keys():
                self._permits[lease_id] = permits[lease_id]
            self._give_back([permit for execution_id, permit in permits.items() if execution_id not in locked])
        if done:
            self.leases.ack(done)
        return granted

    def _give_back(self, permits: list[Permit]) -> None:
        """Return permits (their attempts ended, or their locks were refused); one left behind ends with its lease."""
        try:
            self.gate.permits.release(permits)
        except StoreError as exc:
            log.warning("could not give permits back; they end with their leases", error=str(exc))

    def _attempt_ended(self, lease_ids: list[str]) -> None:
        """Give back the permits of attempts that ended."""
        permits = [p for p in (self._permits.pop(i, None) for i in lease_ids) if p is not None]
        if permits:
            self._give_back(permits)

    def _forget(self, digests: frozenset[str]) -> None:
        """Drop loaded components, instances and local files of digests no revision names any more (off the read path)."""

        def forget() -> None:
            try:
                self.workflows.sandbox.forget(digests)
                self.provider.forget(digests)
                log.info("components no longer deployed were dropped", digests=sorted(digests))
            except Exception:  # noqa: BLE001 - a cache left as it was is no failure
                log.exception("could not drop components no longer deployed")

        threading.Thread(target=forget, name="dolmen-forget", daemon=True).start()

    # ---------------------------------------------------------- executing

    def _process(self, entry: QueueEntry, lease: Lease) -> None:
        def attempt() -> None:
            if not self._gave_up(lease, [entry]):
                if lease.state.kind == "workflow":
                    self.workflows.run(lease, [entry])
                else:
                    self.activities.run(lease, [entry])

        try:
            self._run_held(lease, [entry], attempt)
        finally:
            self._attempt_ended([lease.id])
            self.release(1)

    def _process_batch(self, batch: list[tuple[QueueEntry, Lease]]) -> None:
        """Run a batch of short activities one after the other, then write their finishes together."""
        done: list[tuple[Lease, list[QueueEntry], Attempted]] = []

        def attempt(entry: QueueEntry, lease: Lease) -> None:
            if not self._gave_up(lease, [entry]):
                done.append((lease, [entry], self.activities.attempt(lease.state)))

        try:
            for entry, lease in batch:
                self._guarded(lease, [entry], functools.partial(attempt, entry, lease))
            try:
                errors = self.activities.run_batch(done)
            except Exception as exc:  # noqa: BLE001 - their locks expire and they are taken over
                log.exception("could not write a batch of results", error=str(exc))
                errors = []
            for (lease, _, _), error in zip(done, errors):
                if error is not None:
                    # Its lock expires, and it is taken over.
                    log.error("store error while running", execution_id=lease.id, error=str(error))
            self.processed += len(done)
            self.batched += len(done)
        finally:
            for _, lease in batch:
                self.held_leases.let_go(lease.id)
            self._attempt_ended([lease.id for _, lease in batch])
            self.release(1)

    def _run_held(self, lease: Lease, entries: list[QueueEntry], attempt: Callable[[], object]) -> None:
        """Run one attempt of a lease this runner holds (its lock kept alive meanwhile); errors are logged or recorded, not raised."""
        self.held_leases.hold(lease)
        try:
            if self._guarded(lease, entries, attempt):
                self.processed += 1
        finally:
            self.held_leases.let_go(lease.id)

    def _guarded(self, lease: Lease, entries: list[QueueEntry], attempt: Callable[[], object]) -> bool:
        """`attempt()` with the execution in the log context; whether it returned (errors are logged or recorded)."""
        started = time.perf_counter()
        outcome = "returned"
        try:
            with bound(execution_id=lease.id, ffqn=lease.state.ffqn):
                attempt()
            return True
        except StoreError as exc:
            outcome = "store_error"
            # Its lock expires, and it is taken over (or queued by its recovery timer).
            log.error("store error while running", execution_id=lease.id, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in one execution must not stop the runner
            outcome = "runner_error"
            log.exception("unexpected error while running", execution_id=lease.id)
            self._record_runner_error(lease, entries, exc)
        finally:
            self.metrics.attempt(lease.state.kind, outcome).observe(time.perf_counter() - started)
        return False

    def _gave_up(self, lease: Lease, entries: list[QueueEntry]) -> bool:
        """Finish as `crashed` an execution whose lost attempts used up its retry policy."""
        try:
            policy = self.provider.config_for(lease.state).retry
        except NotFoundError:
            return False  # the executors report a missing deployment themselves
        decision = after_lock(policy, lease.state.attempt)
        if decision is None:
            return False
        log.warning("giving up after lost attempts", attempt=lease.state.attempt, max_attempts=policy.max_attempts)
        try:
            self.leases.finish(lease, decision.outcome, entries=entries)
        except FencedError:
            pass
        return True

    def _record_runner_error(self, lease: Lease, entries: list[QueueEntry], exc: Exception) -> None:
        """Write an unexpected runner failure into the execution's log as a failed attempt (retried per policy)."""
        failure = Failure("runner_error", f"the runner failed around this attempt: {type(exc).__name__}: {exc}")
        detail = "".join(traceback.format_exception(exc))[-4000:]
        try:
            try:
                policy = self.provider.config_for(lease.state).retry
            except NotFoundError:
                policy = RetryPolicy()
            decision = after_failure(policy, lease.state.attempt, failure, now_ms())
            if isinstance(decision, RetryAt):
                self.leases.fail_attempt(lease, {"error": failure.to_json(), "traceback": detail}, decision.at_ms, entries=entries)
            else:
                self.leases.finish(lease, decision.outcome, entries=entries, extra={"traceback": detail})
        except Exception:  # noqa: BLE001 - the lease expires and the repair sweep retries it
            log.exception("could not record the runner error", execution_id=lease.id)

    # ------------------------------------------- join-set children run here

    def reserve(self, wanted: int) -> int:
        """Take up to `wanted` free worker threads for children created locked by this runner."""
        with self._cond:
            taken = max(0, min(wanted, self.settings.concurrency - self._inflight))
            self._inflight += taken
            return taken

    def release(self, count: int) -> None:
        """Give back `count` worker threads (an attempt ended, or threads `reserve` took)."""
        with self._cond:
            self._inflight -= count
            self._cond.notify()

    def spawn(self, new: NewExecution) -> None:
        """Run a join-set child created locked by this runner on a thread `reserve` took."""
        try:
            self._pool.submit(self._run_spawned, new)
        except RuntimeError:
            # The runner is stopping (its pool takes no new work) while the workflow
            # that created the child still runs: run it here rather than leave it to
            # its recovery timer, which would count a lost attempt.
            self._run_spawned(new)

    def _run_spawned(self, new: NewExecution) -> None:
        lease = self._prelocked(new)
        try:
            self._run_held(lease, [], lambda: self.activities.run(lease, [], clear_timer=new.recovery_timer()))
        finally:
            self.release(1)

    def _prelocked(self, new: NewExecution) -> Lease:
        """The lease of an execution this runner created locked (its state as the creating script wrote it)."""
        at = now_ms()
        state = ExecutionState(
            id=new.id, ffqn=new.ffqn, kind=new.kind, digest=new.digest, status="running", version=1, attempt=1,
            created_at=at, updated_at=at, params=new.params, parent=new.parent, owner=new.locked_by,
            revision=new.revision, component=new.component,
            extra={**new.state_extra, **({"priority": new.priority} if new.priority != "normal" else {})},
        )  # fmt: skip
        return Lease(state, self.owner)

    def run_inline(self, new: NewExecution, parent_tail_after: str, parent_commit: PendingCommit | None = None) -> list[Any]:
        """Run an activity this runner created pre-locked, in the calling thread.

        Returns the parent's raw log entries after `parent_tail_after`, read
        when the result is written, so the waiting parent needs no extra read.
        `parent_commit`, when given, is the parent's commit that creates `new`,
        held back to be written with its result.
        """
        lease = self._prelocked(new)
        self.held_leases.hold(lease)
        started = time.perf_counter()
        try:
            with bound(execution_id=lease.id, ffqn=new.ffqn):
                held = self.held_commits.hold(parent_commit) if parent_commit is not None else None
                # A cancellation of the waiting parent stops this activity (see `attempts`).
                with self.attempts.inline(new.parent or "", new.id):
                    tail = self.activities.run(
                        lease, [], clear_timer=new.recovery_timer(), parent_tail_after=parent_tail_after, held=held
                    )
            self.processed += 1
            self.metrics.attempt(lease.state.kind, "returned").observe(time.perf_counter() - started)
            return tail
        finally:
            self.held_leases.let_go(lease.id)

    def is_lost(self, execution_id: str) -> bool:
        """Whether this runner's lease of `execution_id` was refused an extension: its writes would be fenced."""
        return self.held_leases.is_lost(execution_id)

    def _details(self) -> dict[str, object]:
        return {
            "owner": self.owner,
            "concurrency": self.settings.concurrency,
            "inflight": self._inflight,
            "processed": self.processed,
            "batched": self.batched,
            "queues": self.reader.function_count,
        }


def serve_runner(settings: RunnerSettings, stop: threading.Event) -> None:
    """Run until `stop` is set (once a node of the store answers: see `wait_for_store`).

    Raises what `wait_for_store` raises (`StoreUnavailableError` after 30 s,
    `StoreAccessError`), and what `Runner` and `Runner.serve` raise at start.
    """
    wait_for_store(settings.redis_url)
    runner = Runner(settings)
    settle_garbage_collector()  # here, not in `serve`: it is the process's setting (tests serve runners in theirs)
    runner.serve(stop)

