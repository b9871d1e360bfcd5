"""Write-behind delivery of accepted writes' effects: carried along by the next write, or batched by a thread.

A write's effects on other keys (enqueue a child, wake a parent, ack a
queue entry, arm a timer, update an index) may only follow the write's
answer `ok` (see outbox.py). Carrying them out synchronously costs every
write a second round trip. A long-running process (runner, gateway) queues
them here instead: the next write this process sends takes whatever is
queued along in its own pipeline, ahead of its script (they belong to
writes already accepted, so sending them first keeps the rule), and a
background thread sends what no write took along within `linger_s`.

Nothing depends on the queue surviving: if the process dies with effects
still queued, the tree's dirty mark makes the scheduler's sweep deliver the
outbox, queue entries left unacked are reclaimed (a finished execution's
lock is refused and the entry acked), and the repair sweep drops finished
executions from the `active` index.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import structlog

from ..errors import StoreError, StoreUnavailableError
from . import outbox
from .connection import map_redis_errors
from .outbox import Also, Effects, queue_all
from .scripts import Pipeline, Scripts

log = structlog.get_logger("dolmen.store")

@dataclass(frozen=True, slots=True)
class Carried:
    """Effects a write took along in its pipeline: call `sent` after it executed, `failed` if it did not."""

    owner: Deliveries
    batch: list[Effects]
    created: list[Effects]

    def sent(self) -> None:
        for effects in self.created:
            self.owner.submit(effects.root, effects.messages, mark=effects.mark)

    def failed(self) -> None:
        self.owner.resubmit(self.batch)


class Deliveries:
    """The queue of effects, and the thread that sends what nobody took along."""

    def __init__(self, scripts: Scripts, *, linger_s: float = 0.002, max_batch: int = 512) -> None:
        self.scripts = scripts
        self.linger_s = linger_s
        self.max_batch = max_batch
        # Each write's effects with when they were submitted (monotonic seconds; 0.0: due at once).
        self._pending: deque[tuple[float, Effects]] = deque()
        self._waiters: list[threading.Event] = []
        self._cond = threading.Condition()
        self._stopping = False
        # Whether the thread waits for a first submission (only then does `submit` wake it).
        self._idle = False
        self.delivered = 0
        self._thread = threading.Thread(target=self._serve, name="dolmen-deliveries", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """How many writes' effects wait to be sent (a hint: it changes under the caller)."""
        return len(self._pending)

    def submit(self, root: str, messages: list[str], also: Also | None = None, *, mark: str | None = None) -> None:
        """Queue the effects of one accepted write, and the removal of its dirty `mark` (returns at once)."""
        effects = Effects(root, messages, also, mark)
        if not effects.empty:
            at = time.monotonic()
            with self._cond:
                self._pending.append((at, effects))
                # A thread already lingering wakes when the oldest effects are due: waking
                # it for every write cost a context switch and a GIL hand-off per write.
                if self._idle:
                    self._cond.notify()

    def resubmit(self, batch: list[Effects]) -> None:
        with self._cond:
            self._pending.extendleft((0.0, effects) for effects in reversed(batch))
            self._cond.notify()

    def carry(self, pipe: Pipeline) -> Carried | None:
        """Add every queued effect to `pipe` (ahead of what the caller adds next)."""
        batch = self._take()
        if not batch:
            return None
        return Carried(self, batch, queue_all(pipe, batch))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted before this call was sent; False on timeout."""
        done = threading.Event()
        with self._cond:
            self._waiters.append(done)
            self._cond.notify()
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout_s)

    def _take(self, submitted_before: float | None = None) -> list[Effects]:
        """Up to `max_batch` queued effects, oldest first; only those submitted before the given time, when given."""
        with self._cond:
            batch: list[Effects] = []
            pending = self._pending
            while pending and len(batch) < self.max_batch and (submitted_before is None or pending[0][0] <= submitted_before):
                batch.append(pending.popleft()[1])
            return batch

    def _serve(self) -> None:
        while True:
            with self._cond:
                # Effects linger `linger_s` from their submission: the next write may take them
                # along meanwhile (a flush or close cuts it short).
                while not self._waiters and not self._stopping:
                    if not self._pending:
                        self._idle = True
                        self._cond.wait()
                        self._idle = False
                        continue
                    left = self._pending[0][0] + self.linger_s - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                hurry = bool(self._waiters) or self._stopping
            cutoff = None if hurry else time.monotonic() - self.linger_s
            while batch := self._take(cutoff):
                self._send(batch)
            with self._cond:
                waiters, self._waiters = self._waiters, []
                done = self._stopping and not self._pending
            for waiter in waiters:
                waiter.set()
            if done:
                return

    def _send(self, batch: list[Effects]) -> None:
        try:
            with map_redis_errors():
                pipe = self.scripts.pipeline()
                created = queue_all(pipe, batch)
                pipe.execute()
            self.delivered += len(batch)
        except StoreError as exc:
            # The sweeps and reclaims recover all of it (see the module docstring).
            log.warning("effects left to the sweeps", writes=len(batch), error=str(exc))
            return
        except Exception:  # noqa: BLE001 - this thread must survive a bug in one batch
            log.exception("effects left to the sweeps after an unexpected error", writes=len(batch))
            return
        for effects in created:
            self.submit(effects.root, effects.messages, mark=effects.mark)


def carry_out(
    scripts: Scripts,
    deliveries: Deliveries | None,
    root: str,
    messages: list[str],
    also: Also | None = None,
    *,
    mark: str | None = None,
) -> None:
    """Carry out an accepted write's effects and remove its dirty `mark`: queued in `deliveries` when given, else now.

    Done now and failing, they are left to the scheduler's sweep (the tree is marked dirty).
    """
    if deliveries is not None:
        deliveries.submit(root, messages, also, mark=mark)
        return
    try:
        with map_redis_errors():
            outbox.deliver(scripts, root, messages, also=also, mark=mark)
    except StoreUnavailableError as exc:
        log.warning("effects left to the outbox sweep", root=root, error=str(exc))
