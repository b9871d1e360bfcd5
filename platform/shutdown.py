"""Shared plumbing of long-running processes: stop on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for a clean shutdown of a service loop."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
