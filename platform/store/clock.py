"""The store's clock: wall-clock milliseconds, as written in states, events and timers."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch (the unit of every timestamp in the store)."""
    return time.time_ns() // 1_000_000
