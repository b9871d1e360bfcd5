"""Write-behind delivery of accepted writes' effects, batched in one background thread.

A write's effects on other keys (enqueue a child, wake a parent, ack a
queue entry, arm a timer, update an index) may only follow the write's
answer `ok` (see outbox.py). Carrying them out synchronously costs every
write a second round trip; a long-running process (runner, gateway) hands
them to this thread instead, which sends whatever has piled up in one
pipeline. Nothing depends on the thread surviving: if the process dies with
effects still queued, the tree's dirty mark makes the scheduler's sweep
deliver the outbox, queue entries left unacked are reclaimed (a finished
execution's lock is refused and the entry acked), and the repair sweep
drops finished executions from the `active` index.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ..errors import StoreError
from . import keys, outbox
from .connection import map_redis_errors
from .scripts import Scripts

log = structlog.get_logger("dolmen.store")

Also = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class _Effects:
    root: str
    messages: list[str]
    also: Also | None


class Deliveries:
    """A thread that carries out effects in batches of up to `max_batch` writes."""

    def __init__(self, scripts: Scripts, *, max_batch: int = 256) -> None:
        self.scripts = scripts
        self.max_batch = max_batch
        self._queue: queue.Queue[_Effects | threading.Event | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="dolmen-deliveries", daemon=True)
        self._thread.start()
        self.delivered = 0

    def submit(self, root: str, messages: list[str], also: Also | None = None) -> None:
        """Queue the effects of one accepted write (returns at once)."""
        if messages or also is not None:
            self._queue.put(_Effects(root, messages, also))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted before this call was sent; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[_Effects] = []
            waiters: list[threading.Event] = []
            while True:
                if item is None:
                    stopping = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    batch.append(item)
                if stopping or len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._send(batch)
            for waiter in waiters:
                waiter.set()

    def _send(self, batch: list[_Effects]) -> None:
        created: list[tuple[str, list[str]]] = []
        try:
            with map_redis_errors():
                pipe = self.scripts.pipeline()
                for effects in batch:
                    for message in effects.messages:
                        other = outbox.queue_effects(pipe, message)
                        if other is not None:
                            created.append((other, json.loads(message)["msgs"]))
                    for message in effects.messages:
                        pipe.lrem(keys.outbox(effects.root), 1, message)
                    if effects.also is not None:
                        effects.also(pipe)
                pipe.execute()
            self.delivered += len(batch)
        except StoreError as exc:
            # The sweeps and reclaims recover all of it (see the module docstring).
            log.warning("effects left to the sweeps", writes=len(batch), error=str(exc))
            return
        except Exception:  # noqa: BLE001 - this thread must survive a bug in one batch
            log.exception("effects left to the sweeps after an unexpected error", writes=len(batch))
            return
        for root, messages in created:
            self.submit(root, messages)
