"""Process heartbeats in Redis: how `platform status` sees runners, schedulers, gateways.

Each long-running process refreshes one field of the `dolmen:processes` hash
every few seconds; a field older than `STALE_AFTER_S` belongs to a dead process.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


from ..metrics import METRICS_KEY
from .connection import Redis, map_redis_errors

PROCESSES_KEY = "dolmen:processes"
INTERVAL_S = 2.0
STALE_AFTER_S = 10.0
# A beat overwrites its own field, so it is written also when Redis is over
# maxmemory: a full store must not make every process look dead, nor keep
# `platform up` from becoming ready on data over the limit.
_BEAT = "#!lua flags=allow-oom\nreturn redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process as last reported: `id` is `KIND:HOST:PID`; `started_at` and `last_seen` are Unix times in s."""

    id: str
    kind: str
    pid: int
    host: str
    started_at: float
    last_seen: float
    details: dict[str, Any]

    @property
    def healthy(self) -> bool:
        """Whether it reported within `STALE_AFTER_S` seconds."""
        return time.time() - self.last_seen < STALE_AFTER_S


class Heartbeat:
    """Reports this process as alive until stopped, every `INTERVAL_S` seconds; `details()` adds live facts (a JSON object).

    `metrics()`, when given, is the process's metrics snapshot (`metrics.snapshot`), written with each beat.
    """

    def __init__(
        self, client: Redis, kind: str, details: Any = None, *, metrics: Callable[[], str] | None = None
    ) -> None:
        self.client = client
        self.kind = kind
        # The process's metrics snapshot (see `metrics`), written next to the beat.
        self._metrics = metrics
        self.id = f"{kind}:{socket.gethostname()}:{os.getpid()}"
        self.started_at = time.time()
        self._details = details or (lambda: {})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dolmen-heartbeat-{kind}", daemon=True)

    def start(self) -> Heartbeat:
        """Beat once now (raising `StoreError` if that fails), then from a daemon thread; returns self."""
        self.beat()
        self._thread.start()
        return self

    def beat(self) -> None:
        """Write this process's record (and metrics snapshot) now; also over maxmemory."""
        record = {
            "kind": self.kind,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self.started_at,
            "last_seen": time.time(),
            "details": self._details(),
        }
        with map_redis_errors():
            self.client.eval(_BEAT, 1, PROCESSES_KEY, self.id, json.dumps(record))
            if self._metrics is not None:
                # A key of its own: `platform status` and the schedulers' shares read the beats often.
                self.client.eval(_BEAT, 1, METRICS_KEY, self.id, self._metrics())

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a missed beat is reported as staleness, not a crash
                pass

    def stop(self) -> None:
        """Stop beating and remove this process's entry."""
        self._stop.set()
        try:
            with map_redis_errors():
                self.client.hdel(PROCESSES_KEY, self.id)
                self.client.hdel(METRICS_KEY, self.id)
        except Exception:  # noqa: BLE001 - Redis may already be gone at shutdown
            pass


def read_processes(client: Redis) -> list[ProcessInfo]:
    """Every process that reported, stale ones included (see `ProcessInfo.healthy`), sorted by kind and id."""
    with map_redis_errors():
        raw: dict[bytes, bytes] = client.hgetall(PROCESSES_KEY)  # type: ignore[assignment]
    out = []
    for key, value in raw.items():
        data = json.loads(value)
        out.append(
            ProcessInfo(
                id=key.decode(),
                kind=data["kind"],
                pid=data["pid"],
                host=data["host"],
                started_at=data["started_at"],
                last_seen=data["last_seen"],
                details=data.get("details", {}),
            )
        )
    return sorted(out, key=lambda p: (p.kind, p.id))


def prune_stale(client: Redis, older_than_s: float = 300.0) -> int:
    """Forget processes silent for longer than `older_than_s` seconds; returns how many."""
    removed = 0
    for proc in read_processes(client):
        if time.time() - proc.last_seen > older_than_s:
            with map_redis_errors():
                removed += int(client.hdel(PROCESSES_KEY, proc.id))  # type: ignore[arg-type]
                client.hdel(METRICS_KEY, proc.id)
    return removed


def forget_processes(client: Redis, process_ids: list[str]) -> None:
    """Drop the heartbeats (and metrics snapshots) of these processes."""
    with map_redis_errors():
        for process_id in process_ids:
            client.hdel(PROCESSES_KEY, process_id)
            client.hdel(METRICS_KEY, process_id)


def read_metrics(client: Redis) -> list[tuple[str, str]]:
    """`(process id, metrics snapshot)` of every process whose heartbeat is fresh (see `metrics`)."""
    with map_redis_errors():
        raw: dict[bytes, bytes] = client.hgetall(METRICS_KEY)  # type: ignore[assignment]
    live = {proc.id for proc in read_processes(client) if proc.healthy}
    return sorted((key.decode(), value.decode()) for key, value in raw.items() if key.decode() in live)
