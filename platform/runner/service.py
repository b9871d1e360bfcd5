"""The runner process: pulls executions from the queues and runs them."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import structlog

from ..heartbeat import Heartbeat
from ..store.connection import connect

log = structlog.get_logger("dolmen.runner")


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    redis_url: str
    data_dir: Path
    concurrency: int = 4
    name: str | None = None


def serve_runner(settings: RunnerSettings, stop: threading.Event) -> None:
    """Run until `stop` is set."""
    client = connect(settings.redis_url)
    beat = Heartbeat(client, "runner", lambda: {"concurrency": settings.concurrency}).start()
    log.info("runner started", redis=settings.redis_url)
    try:
        stop.wait()
    finally:
        beat.stop()
        log.info("runner stopped")
