"""The scheduler process: timers, recovery of lost work, upgrade verification."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import structlog

from .heartbeat import Heartbeat
from .store.connection import connect

log = structlog.get_logger("dolmen.scheduler")


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    redis_url: str
    data_dir: Path


def serve_scheduler(settings: SchedulerSettings, stop: threading.Event) -> None:
    """Run until `stop` is set."""
    client = connect(settings.redis_url)
    beat = Heartbeat(client, "scheduler").start()
    log.info("scheduler started", redis=settings.redis_url)
    try:
        stop.wait()
    finally:
        beat.stop()
        log.info("scheduler stopped")
