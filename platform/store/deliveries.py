"""Write-behind delivery of accepted writes' effects: carried along by the next write, or batched by a thread.

A write's effects on other keys (enqueue a child, wake a parent, ack a
queue entry, arm a timer, update an index) may only follow the write's
answer `ok` (see outbox.py). Carrying them out synchronously costs every
write a second round trip. A long-running process (runner, gateway) queues
them here instead: the next write this process sends takes whatever is
queued along in its own pipeline, ahead of its script (they belong to
writes already accepted, so sending them first keeps the rule), and a
background thread sends what no write took along within `linger_s` (`lazy_s`
for effects that start or wake nothing, see `Deliveries`).

Nothing depends on the queue surviving: if the process dies with effects
still queued, the tree's dirty mark makes the scheduler's sweep deliver the
outbox, queue entries left unacked are reclaimed (a finished execution's
lock is refused and the entry acked), and the repair sweep drops finished
executions from the `active` index.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

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

    # Where the effects are among the pipeline's replies.
    span: tuple[int, int] = (0, 0)

    def sent(self, replies: list[Any]) -> None:
        """After the pipeline executed: what follows the effects, or all of them again if one failed."""
        if any(isinstance(reply, BaseException) for reply in replies[self.span[0] : self.span[1]]):
            self.failed()
            return
        for effects in self.created:
            self.owner.submit(effects.root, effects.messages, effects.also, mark=effects.mark)

    def failed(self) -> None:
        """The pipeline did not execute: queue the effects again, due at once."""
        self.owner.resubmit(self.batch)


class Deliveries:
    """The queue of effects, and the thread that sends what nobody took along.

    Effects that start or wake an execution (enqueue, create, timer and chain
    messages) are due `linger_s` after they were submitted; the rest (acks,
    indexes, dirty-mark removals) only `lazy_s` after, as the next write of a
    busy process nearly always takes them along first. The thread sleeps
    until the earliest due time and is woken only by a submission due before
    it: a thread woken for every write cost a context switch and a GIL
    hand-off per write.
    """

    def __init__(self, scripts: Scripts, *, linger_s: float = 0.002, lazy_s: float = 0.05, max_batch: int = 512) -> None:
        """Start the thread; `max_batch` bounds the writes' effects sent in one pipeline."""
        self.scripts = scripts
        self.linger_s = linger_s
        self.lazy_s = lazy_s
        self.max_batch = max_batch
        # Each write's effects with when they are due (monotonic seconds), in submission order.
        self._pending: deque[tuple[float, Effects]] = deque()
        self._waiters: list[threading.Event] = []
        self._cond = threading.Condition()
        self._stopping = False
        # When the thread wakes next by itself (inf: it waits for a submission).
        self._wake_at = math.inf
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
            due = time.monotonic() + (self.linger_s if _urgent(messages) else self.lazy_s)
            with self._cond:
                self._pending.append((due, effects))
                if due < self._wake_at:
                    self._wake_at = due
                    self._cond.notify()

    def resubmit(self, batch: list[Effects]) -> None:
        """Queue effects a write took along but could not send, first and due at once."""
        with self._cond:
            self._pending.extendleft((0.0, effects) for effects in reversed(batch))
            self._wake_at = 0.0
            self._cond.notify()

    def carry(self, pipe: Pipeline) -> Carried | None:
        """Add every queued effect to `pipe` (ahead of what the caller adds next)."""
        batch = self._take()
        if not batch:
            return None
        start = len(pipe)
        created = queue_all(pipe, batch)
        return Carried(self, batch, created, (start, len(pipe)))

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

    def _take(self, upto: int | None = None) -> list[Effects]:
        """Up to `max_batch` queued effects in submission order; only the first `upto`, when given."""
        with self._cond:
            count = min(len(self._pending), self.max_batch if upto is None else min(upto, self.max_batch))
            return [self._pending.popleft()[1] for _ in range(count)]

    def _due(self, now: float) -> int:
        """How many queued effects to send now: up to the last one that is due (those before it go along)."""
        last = 0
        for position, (due, _) in enumerate(self._pending, 1):
            if due <= now:
                last = position
        return last

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._waiters and not self._stopping:
                    now = time.monotonic()
                    earliest = min((due for due, _ in self._pending), default=math.inf)
                    if earliest <= now:
                        break
                    self._wake_at = earliest
                    self._cond.wait(None if earliest == math.inf else earliest - now)
                self._wake_at = 0.0  # sending: no submission needs to wake it
                upto = None if self._waiters or self._stopping else self._due(time.monotonic())
            while upto is None or upto > 0:
                batch = self._take(upto)
                if not batch:
                    break
                self._send(batch)
                if upto is not None:
                    upto -= len(batch)
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
            self.submit(effects.root, effects.messages, effects.also, mark=effects.mark)


def _urgent(messages: list[str]) -> bool:
    """Whether any of these outbox messages starts or wakes an execution (see `outbox`)."""
    return any(not (m.startswith('{"op": "index"') or m.startswith('{"op": "expire"')) for m in messages)


def carry_out(
    scripts: Scripts,
    deliveries: Deliveries | None,
    root: str,
    messages: list[str],
    also: Also | None = None,
    *,
    mark: str | None = None,
    unwritten: list[str] | None = None,
) -> None:
    """Carry out an accepted write's effects and remove its dirty `mark`: queued in `deliveries` when given, else now.

    `messages` are those the write script was given: the ones it carried
    out itself (`Scripts.direct`) are left out. `unwritten` are messages no
    script was given, carried out as they are. Done now and failing, they
    are left to the scheduler's sweep (the tree is marked dirty).
    """
    messages = outbox.left_in_outbox(scripts.direct, messages) + (unwritten or [])
    if deliveries is not None:
        deliveries.submit(root, messages, also, mark=mark)
        return
    try:
        with map_redis_errors():
            outbox.deliver_all(scripts, [Effects(root, messages, also, mark)])
    except StoreUnavailableError as exc:
        log.warning("effects left to the outbox sweep", root=root, error=str(exc))
