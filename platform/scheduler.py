"""The scheduler process: fires timers and cron schedules, delivers lost outbox messages, repairs lost work.

Timers (retries, durable sleeps, scheduled executions) live in sorted sets,
one per shard (store/shards.py), fired by store/timers.py (carried out
first, removed after: firing twice is harmless); several schedulers split
the shards between them (`share`). The repair sweep (store/repair.py)
re-enqueues executions that lost their queue entry or timer. The retention
sweep (store/retention.py) removes finished trees whose retention passed, in
batches: one batch a sweep, or one a tick while more are due. Several
schedulers may run at once: each step is safe to take twice, and each
looks after its share of the shards. Cron schedules (cron_firing.py) are
split by the same shares; a tick fired twice names one execution.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from .config import env_int
from .cron_firing import CronFiring
from .errors import StoreError, StoreFullError
from .store.heartbeats import Heartbeat, ProcessInfo, prune_stale, read_processes
from .metrics import SchedulerMetrics
from .store import outbox
from .store.access import redacted
from .store.connection import StoreClient, connect, full_message, wait_for_store, wait_until_reachable
from .store.clock import now_ms
from .store.layout_moves import move_legacy_keys
from .store.reconcile import Reconciler
from .store.repair import RepairSweep
from .store.retention import RetentionSweep
from .store.scripts import Scripts
from .store.shards import Shards
from .store.timers import fire_due as fire_timers

log = structlog.get_logger("dolmen.scheduler")

# How often timers are tried again while Redis refuses them for memory.
FULL_RETRY_S = 1.0
# A scheduler whose loop has not ticked for this long leaves its shards to the others (see `share`).
TICKING_S = 5.0


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """What `serve_scheduler` runs with: the store's URL, the data directory (its component cache, for the upgrades
    it verifies), the pause between loop rounds that fired nothing and between sweeps (s)."""

    redis_url: str
    data_dir: Path
    tick_s: float = 0.05
    sweep_every_s: float = 1.0
    # The repair sweep re-enqueues executions untouched this long past when they could run.
    repair_after_ms: int = field(default_factory=lambda: env_int("DOLMEN_REPAIR_AFTER_MS"))


def share(processes: list[ProcessInfo], me: str, shards: Shards, now_s: float) -> list[int]:
    """The shard numbers scheduler `me` (its heartbeat id) looks after: an even share among the schedulers that tick.

    Pure. A scheduler counts while its heartbeat is fresh and its loop ticked
    within `TICKING_S` (a stalled loop keeps beating from its own thread:
    its shards go to the others). Schedulers that disagree for a moment
    (one just started or died) look after some shards twice, which is safe:
    every step a scheduler takes is safe to take twice (see the module
    docstring); none is left out for longer than the heartbeats take to tell.
    """
    ticking = sorted(
        p.id
        for p in processes
        if p.kind == "scheduler" and p.healthy and now_s - float(p.details.get("ticked_at", p.last_seen)) < TICKING_S
    )
    if me not in ticking:
        return list(range(shards.count))  # not seen yet by the others either: take everything until it is
    return shards.mine(ticking.index(me), len(ticking))


class Scheduler:
    """Timers, cron ticks, outbox sweeping, the repair, retention and reconciling sweeps for one Redis.

    Its steps raise `StoreError` when the store fails, but for `StoreFullError`
    where noted: a step that cannot write for memory waits for its next turn.
    `stale_ms` is the repair sweep's (see `RepairSweep`).
    """

    def __init__(self, client: StoreClient, scripts: Scripts | None = None, *, stale_ms: int = 10_000) -> None:
        self.client = client
        self.scripts = scripts or Scripts(client)
        self.repair = RepairSweep(client, self.scripts, stale_ms=stale_ms)
        self.retention = RetentionSweep(self.scripts)
        self._reconciler: Reconciler | None = None
        self.cron = CronFiring(self.scripts)
        self.fired = 0
        self.metrics = SchedulerMetrics()
        # The shards of timers, dirty marks, the active and expiry indexes this scheduler looks after (all when None).
        self.shards: list[int] | None = None
        self.ticked_at = time.time()
        # When Redis last refused a timer for memory (monotonic s), if it did since the last success.
        self._timers_refused_at: float | None = None

    def fire_due(self, limit: int = 500) -> int:
        """Carry out every timer that is due, then remove those carried out; returns how many fired.

        A timer is removed after it fired (in the next round trip), and only
        if nobody armed it again meanwhile (a retry re-arms the same member
        for a later time). One that Redis refused (over maxmemory it refuses
        the timer's write, never a removal) stays armed and fires again, tried
        once a second while Redis is full; the sweeps, and the retention that
        frees memory, go on meanwhile. Any other refusal raises its `StoreError`.
        """
        refused_at = self._timers_refused_at
        if refused_at is not None and time.monotonic() - refused_at < FULL_RETRY_S:
            return 0
        timers = fire_timers(self.scripts, self.shards, limit)
        if not timers.due:
            return 0
        if timers.full:
            if self._timers_refused_at is None:
                log.warning("timers wait for room in Redis", waiting=timers.due - timers.fired, error=full_message())
            self._timers_refused_at = time.monotonic()
        elif timers.refused is not None:
            raise timers.refused
        else:
            self._timers_refused_at = None
        self.fired += timers.fired
        self.metrics.timers_fired.inc(timers.fired)
        return timers.fired

    def fire_cron(self) -> int:
        """Fire the due ticks of the cron schedules in this scheduler's shards (cron_firing.py); how many (0 while Redis is full)."""
        try:
            fired = self.cron.step(now_ms(), self.shards)
        except StoreFullError:
            return 0  # creating writes: the tick stays unrecorded and fires once there is room (or misfires)
        self.metrics.cron_fired.inc(fired)
        return fired

    def sweep(self) -> int:
        """Deliver outbox messages of writers that died mid-way (from this scheduler's dirty shards)."""
        return outbox.sweep(self.scripts, shards=self.shards)

    def take_share(self, processes: list[ProcessInfo], me: str) -> None:
        """Take this scheduler's share of the shards, given the processes' last heartbeats (see `share`)."""
        mine = share(processes, me, self.scripts.shards, time.time())
        if mine != self.shards:
            log.info("scheduler takes its share of the shards", shards=mine, of=self.scripts.shards.count)
        self.shards = self.repair.shards = self.retention.shards = mine

    def repair_step(self) -> int:
        """One batch of the repair sweep; returns how many executions were re-enqueued (0 while Redis is full)."""
        try:
            requeued = self.repair.step(now_ms())
        except StoreFullError:
            return 0  # requeueing writes: it waits for room, while the retention after it frees memory
        if requeued:
            self.metrics.repaired.inc(requeued)
            log.warning("re-enqueued executions that were neither queued, locked nor timed", count=requeued)
        return requeued

    @property
    def reconciler(self) -> Reconciler:
        """The cluster reconciler, made at first use."""
        if self._reconciler is None:
            self._reconciler = Reconciler(self.client, self.scripts.shards)
        return self._reconciler

    def reconcile_check(self) -> None:
        """On a cluster, start a reconciling pass when its masters changed (store/reconcile.py).

        One scheduler does it: the one with shard 0 in its share (overlap while shares move is harmless).
        """
        if self.shards is None or 0 in self.shards:
            self.reconciler.check()

    def reconcile_step(self) -> int:
        """One batch of a reconciling pass, if one is under way; how many index entries were put back."""
        if self._reconciler is None or not self._reconciler.active:
            return 0
        try:
            return self._reconciler.step(now_ms())
        except StoreFullError:
            return 0  # it writes: it waits for room, like the repair sweep

    def retention_step(self) -> int:
        """One batch of the retention sweep; returns how many finished trees were removed."""
        removed = self.retention.step(now_ms())
        if removed:
            log.debug("removed finished trees whose retention passed", count=removed)
        return removed


def serve_scheduler(settings: SchedulerSettings, stop: threading.Event) -> None:
    """Run until `stop` is set (once a node of the store answers: see `wait_for_store`).

    Raises what `wait_for_store` and `connect` raise (`StoreUnavailableError`
    after 30 s without an answer, `StoreAccessError`, `ConfigError`) and a
    `ConfigError` for a `DOLMEN_SHARDS` the store does not hold; store errors
    after it started are logged and the loop goes on.
    """
    wait_for_store(settings.redis_url)
    client = connect(settings.redis_url)
    wait_until_reachable(client)
    scheduler = Scheduler(client, stale_ms=settings.repair_after_ms)
    scheduler.scripts.shards  # noqa: B018 - read (or set, on an empty store) before any work; a wrong DOLMEN_SHARDS stops here
    beat = Heartbeat(client, "scheduler", lambda: {"timers_fired": scheduler.fired, "cron_fired": scheduler.cron.fired, "ticked_at": scheduler.ticked_at}, metrics=scheduler.metrics.snapshot).start()
    # Queued upgrades replay workflow logs, which can take seconds: a thread of
    # their own keeps timers firing on time meanwhile.
    from .deploy.upgrade_checks import PendingUpgrades

    upgrades = threading.Thread(
        target=PendingUpgrades(client, settings.data_dir).serve, args=(stop,), name="dolmen-upgrades", daemon=True
    )
    upgrades.start()
    log.info("scheduler started", redis=redacted(settings.redis_url))
    last_sweep = 0.0
    moved_legacy = False
    try:
        while not stop.is_set():
            try:
                if not moved_legacy:
                    moved = move_legacy_keys(client, scheduler.scripts.shards)
                    if moved:
                        log.info("moved queue, timer and index entries from the keys of an earlier version", entries=moved)
                    moved_legacy = True
                scheduler.ticked_at = time.time()
                fired = scheduler.fire_due()
                scheduler.fire_cron()
                if time.monotonic() - last_sweep > settings.sweep_every_s:
                    last_sweep = time.monotonic()
                    scheduler.take_share(read_processes(client), beat.id)
                    scheduler.sweep()
                    scheduler.reconcile_check()
                    scheduler.repair_step()
                    scheduler.retention_step()
                    prune_stale(client)
                elif scheduler.retention.backlog:
                    scheduler.retention_step()  # a full batch was due: go on at every tick until caught up
                scheduler.reconcile_step()  # a pass after a failover goes on at every tick until done
            except StoreError as exc:
                log.error("store unavailable", error=str(exc))
                stop.wait(1.0)
                continue
            if not fired:
                stop.wait(settings.tick_s)
    finally:
        beat.stop()
        log.info("scheduler stopped", fired=scheduler.fired)
