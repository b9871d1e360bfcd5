"""Group commit: the write scripts of a process's threads, sent together.

A runner's worker threads each write a few scripts per execution (lock,
commit, finish). Sent one by one, every script costs a round trip and its
share of redis-py work, socket calls and GIL hand-offs. Here the first
writer to arrive becomes the leader: it sends everything queued (its own
write included) as one pipeline, hands each waiting writer its reply, and
passes the lead on to a writer that queued meanwhile, so no writer serves
others for longer than one batch. A lone writer pays nothing extra: it
leads a batch of one. This is the classic group commit of databases (e.g.
PostgreSQL's commit_delay, without the delay).

Scripts in one batch run in queue order, each as its own atomic script:
batching changes no write's meaning, only how many round trips carry them.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from . import outbox
from .connection import map_redis_errors, translated
from .deliveries import Deliveries
from .plain_pipeline import HeldConnection
from .scripts import Scripts

Call = tuple[str, list[str], list[Any]]

# Bounds one pipeline (and so how long one leader serves others).
MAX_BATCH = 64


class _Writer:
    """A thread with writes queued: woken when one of them is done, or to lead.

    One per thread, reused for each of its writes (an `Event` per write was a
    measurable share of a runner's CPU). A wake-up left over from its last
    write is harmless: a woken writer looks again and waits again.
    """

    __slots__ = ("wake", "lead")

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.lead = False

    def reused(self) -> _Writer:
        self.wake.clear()
        self.lead = False
        return self


class _Write:
    __slots__ = ("mark", "calls", "writer", "done", "replies", "error")

    def __init__(self, mark: str | None, calls: list[Call], writer: _Writer) -> None:
        self.mark = mark
        self.calls = calls
        self.writer = writer
        self.done = False
        self.replies: list[Any] = []
        self.error: BaseException | None = None

    def result(self) -> list[Any]:
        if self.error is not None:
            raise self.error
        return self.replies


class GroupCommit:
    """Sends concurrent writes (lists of script calls) in shared pipelines.

    `send(mark, calls)` returns the replies of `calls` in order, or raises
    what sending them raised (a `StoreError`: the caller may re-send, the
    write ids make that safe). `mark`, when given, is written to the dirty
    index first (see `outbox`). Effects queued in `deliveries` ride along.
    `send_all` queues several writes of one thread at once.
    """

    def __init__(self, scripts: Scripts, deliveries: Deliveries | None = None) -> None:
        self.scripts = scripts
        self.deliveries = deliveries
        self._queue: deque[_Write] = deque()
        self._lock = threading.Lock()
        self._busy = False
        self.batches = 0
        self.writes = 0
        self._writers = threading.local()
        # Only the leader sends, one batch at a time: one connection serves every batch.
        self._connection = HeldConnection(scripts.client)

    def close(self) -> None:
        """Hand the connection the batches went on back to the client's pool (sending again takes one again)."""
        with self._lock:
            self._connection.close()

    def send(self, mark: str | None, calls: list[Call]) -> list[Any]:
        """The replies of `calls` (`(script, keys, args)`), in order; raises `StoreError` (see the class docstring)."""
        return self._queued([(mark, calls)])[0].result()

    def send_all(self, writes: list[tuple[str | None, list[Call]]]) -> list[list[Any] | BaseException]:
        """Several writes, each as `send` would send it; per write its replies, or what sending it raised."""
        return [write.error if write.error is not None else write.replies for write in self._queued(writes)]

    def _queued(self, items: list[tuple[str | None, list[Call]]]) -> list[_Write]:
        writer = getattr(self._writers, "writer", None)
        if writer is None:
            writer = self._writers.writer = _Writer()
        writer.reused()
        writes = [_Write(mark, calls, writer) for mark, calls in items]
        last = writes[-1]
        with self._lock:
            self._queue.extend(writes)
            leading = not self._busy
            self._busy = True
        while not leading:
            writer.wake.wait()
            # Cleared before looking: a write done (or a lead passed) after this sets it again.
            writer.wake.clear()
            if writer.lead:
                writer.lead = False
                leading = True
            elif last.done:
                return writes
        # Lead: send batches until our own writes are done, then pass the lead on.
        while not last.done:
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            self._send(batch)
        with self._lock:
            if self._queue:
                successor = self._queue[0].writer
                successor.lead = True
                successor.wake.set()
            else:
                self._busy = False
        return writes

    def _send(self, batch: list[_Write]) -> None:
        carried = None
        try:
            with map_redis_errors():
                pipe = self.scripts.pipeline()
                carried = self.deliveries.carry(pipe) if self.deliveries is not None else None
                positions: list[list[int]] = []
                for write in batch:
                    if write.mark is not None:
                        outbox.mark_dirty(pipe, write.mark)
                    positions.append([pipe.script(name, keys, args) for name, keys, args in write.calls])
                results = pipe.execute(raise_errors=False, connection=self._connection.get())
        except BaseException as exc:  # noqa: BLE001 - handed to every writer of the batch
            if carried is not None:
                carried.failed()
            for write in batch:
                write.error = exc
                write.done = True
                write.writer.wake.set()
            return
        if carried is not None:
            carried.sent(results)
        self.batches += 1
        self.writes += len(batch)
        for write, where in zip(batch, positions):
            replies = [results[p] for p in where]
            failed = next((r for r in replies if isinstance(r, Exception)), None)
            if failed is not None:
                write.error = translated(failed)
            write.replies = replies
            write.done = True
            write.writer.wake.set()
