"""The activity attempts a runner is running, so that a cancellation reaches them.

A cancellation of a running execution reaches its runner as a message (see
`cancel_watch`) or, failing that, at its next lock extension. If the
execution is an activity attempt running here, its `Interruption` stops it.
If it is a workflow that runs a directly called activity inline, in the
same thread, that activity is stopped: the workflow then sees its own
cancellation and cancels its other children.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..wasm.interruption import Interruption


class RunningAttempts:
    """Interruptions of the attempts running in this process, by execution id; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: dict[str, Interruption] = {}
        # A workflow's id -> the id of the activity it runs inline right now.
        self._inline: dict[str, str] = {}

    @contextmanager
    def attempt(self, execution_id: str, timeout_ms: int | None) -> Iterator[Interruption]:
        """Register an attempt of `execution_id` while the block runs; yields its Interruption."""
        interruption = Interruption(timeout_ms)
        with self._lock:
            self._attempts[execution_id] = interruption
        try:
            yield interruption
        finally:
            with self._lock:
                if self._attempts.get(execution_id) is interruption:
                    del self._attempts[execution_id]

    @contextmanager
    def inline(self, parent_id: str, child_id: str) -> Iterator[None]:
        """While the block runs, workflow `parent_id` runs activity `child_id` inline."""
        with self._lock:
            self._inline[parent_id] = child_id
        try:
            yield
        finally:
            with self._lock:
                if self._inline.get(parent_id) == child_id:
                    del self._inline[parent_id]

    def cancel(self, execution_id: str, reason: str = "its cancellation was requested") -> bool:
        """Stop the attempt of `execution_id`, or the activity it runs inline; False if neither runs here."""
        with self._lock:
            interruption = self._attempts.get(execution_id)
            if interruption is None:
                child = self._inline.get(execution_id)
                interruption = self._attempts.get(child) if child is not None else None
                reason = f"its parent workflow {execution_id} was cancelled"
        if interruption is None:
            return False
        interruption.cancel(reason)
        return True
