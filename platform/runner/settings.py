"""A runner process's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import env_int
from ..wit.limits import MAX_VALUE_ENV


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How a runner process runs: its store, data directory, threads, locks and limits (defaults from the environment).

    `concurrency` is the number of worker threads; `lock_ttl_ms` how long a
    lease lasts without extension (extended every third of it);
    `read_block_ms` how long one read of the queues waits for an entry.
    """

    redis_url: str
    data_dir: Path
    concurrency: int = 4
    name: str | None = None
    lock_ttl_ms: int = field(default_factory=lambda: env_int("DOLMEN_LOCK_TTL_MS"))
    # How long a directly called activity may run before its request is written on its own (see `held`).
    inline_hold_ms: int = field(default_factory=lambda: env_int("DOLMEN_INLINE_HOLD_MS"))
    # The largest result or call params, in bytes of JSON (see `wit.limits`).
    max_value_bytes: int = field(default_factory=lambda: env_int(MAX_VALUE_ENV))
    read_block_ms: int = 1000
