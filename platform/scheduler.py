"""The scheduler process: fires timers, delivers lost outbox messages, cleans indexes.

Timers (retries, durable sleeps, scheduled executions) live in one sorted
set. A due timer is carried out first and removed after, so a scheduler that
dies in between leaves it to fire again; firing twice is harmless (enqueueing
is deduplicated by the lock, delivering a delay by the `done` hash). Several
schedulers may run at once.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import structlog

from .errors import StoreError
from .heartbeat import Heartbeat, prune_stale
from .store import keys, outbox
from .store.connection import connect, map_redis_errors
from .store.executions import now_ms
from .store.scripts import Scripts

log = structlog.get_logger("dolmen.scheduler")


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    redis_url: str
    data_dir: Path
    tick_s: float = 0.05
    sweep_every_s: float = 1.0


class Scheduler:
    """Timers, outbox sweeping and index cleanup for one Redis."""

    def __init__(self, client: redis.Redis, scripts: Scripts | None = None) -> None:
        self.client = client
        self.scripts = scripts or Scripts(client)
        self.fired = 0

    def fire_due(self, limit: int = 500) -> int:
        """Carry out every timer that is due; returns how many fired."""
        with map_redis_errors():
            due: list[bytes] = self.client.zrangebyscore(keys.TIMERS, "-inf", now_ms(), start=0, num=limit)  # type: ignore[assignment]
            for raw in due:
                self.fire(json.loads(raw))
                self.client.zrem(keys.TIMERS, raw)
        self.fired += len(due)
        return len(due)

    def fire(self, member: dict[str, Any]) -> None:
        op = member["op"]
        if op == "enqueue":
            self.client.xadd(keys.queue(member["ffqn"]), {"id": member["id"]})
        elif op == "deliver":
            execution_id = member["id"]
            root = keys.root_of(execution_id)
            wake = outbox.enqueue_msg(member["ffqn"], execution_id)
            pipe = self.scripts.pipeline()
            outbox.mark_dirty(pipe, root)
            position = pipe.script(
                "deliver",
                [keys.state(execution_id), keys.log(execution_id), keys.done(execution_id), keys.outbox(root)],
                [member["delay_id"], json.dumps(member["response"]), now_ms(), wake],
            )
            woke = pipe.execute()[position]
            if woke:
                outbox.deliver(self.client, root, [wake])
        else:
            log.error("unknown timer", member=member)

    def sweep(self) -> int:
        """Deliver outbox messages of writers that died mid-way."""
        with map_redis_errors():
            return outbox.sweep(self.client, self.scripts)

    def clean_active_index(self, batch: int = 200) -> int:
        """Drop finished executions from the `active` index (their writers may have died)."""
        removed = 0
        with map_redis_errors():
            ids: list[bytes] = self.client.zrange(keys.ACTIVE, 0, batch - 1)  # type: ignore[assignment]
            if not ids:
                return 0
            pipe = self.client.pipeline(transaction=False)
            for raw in ids:
                pipe.hget(keys.state(raw.decode()), "status")
            for raw, status in zip(ids, pipe.execute()):
                if status in (b"finished", None):
                    removed += int(self.client.zrem(keys.ACTIVE, raw))  # type: ignore[arg-type]
        return removed


def serve_scheduler(settings: SchedulerSettings, stop: threading.Event) -> None:
    """Run until `stop` is set."""
    client = connect(settings.redis_url)
    scheduler = Scheduler(client)
    beat = Heartbeat(client, "scheduler", lambda: {"timers_fired": scheduler.fired}).start()
    # Queued upgrades replay workflow logs, which can take seconds: a thread of
    # their own keeps timers firing on time meanwhile.
    from .deploy.upgrader import PendingUpgrades

    upgrades = threading.Thread(
        target=PendingUpgrades(client, settings.data_dir).serve, args=(stop,), name="dolmen-upgrades", daemon=True
    )
    upgrades.start()
    log.info("scheduler started", redis=settings.redis_url)
    last_sweep = 0.0
    try:
        while not stop.is_set():
            try:
                fired = scheduler.fire_due()
                if time.monotonic() - last_sweep > settings.sweep_every_s:
                    last_sweep = time.monotonic()
                    scheduler.sweep()
                    scheduler.clean_active_index()
                    prune_stale(client)
            except StoreError as exc:
                log.error("store unavailable", error=str(exc))
                stop.wait(1.0)
                continue
            if not fired:
                stop.wait(settings.tick_s)
    finally:
        beat.stop()
        log.info("scheduler stopped", fired=scheduler.fired)
