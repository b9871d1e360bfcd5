"""Commits held back while a workflow's directly called activity runs inline.

A workflow that calls an activity directly waits for it; its runner creates
the child and runs it in the same thread. Written one after the other, the
request and the result cost two round trips per call. Instead the request
(the parent's commit, which creates the child locked by this runner) is held
back and written with the result, in one round trip, when the activity
returns within `hold_ms`. An activity that runs longer has its request written
then by the `HeldCommits` thread, so it shows up as running, and a runner that
stops meanwhile is taken over as for any child.

What holding changes: a runner that dies within `hold_ms` of starting such an
activity leaves no trace of the call; the workflow's next attempt calls it
again. Activities run at least once anyway (see README "Guarantees").
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Any

import structlog

from ..store.leases import Leases, PendingCommit

log = structlog.get_logger("dolmen.runner")


class Held:
    """One held commit: taken by the call's own write, or written on its own by `HeldCommits`."""

    def __init__(self, pending: PendingCommit) -> None:
        self.last_seen = pending.last_seen
        self._pending: PendingCommit | None = pending
        self._lock = threading.Lock()
        # Held until the commit was taken or written: a plain lock is a tenth of an Event's cost to make,
        # and one is made per direct call.
        self._done = threading.Lock()
        self._done.acquire()
        self._entries: list[Any] = []
        self._error: BaseException | None = None

    def take(self) -> PendingCommit | None:
        """The commit, if nobody wrote it yet: the caller now writes it."""
        pending = self._claim()
        if pending is not None:
            self._done.release()
        return pending

    def write(self, leases: Leases) -> None:
        """Write the commit on its own unless it was taken (from the `HeldCommits` thread).

        `written()` waits until this write answered, not merely until it was claimed.
        """
        pending = self._claim()
        if pending is None:
            return
        try:
            self._entries = leases.write_pending(pending)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in `written`
            self._error = exc
        finally:
            self._done.release()

    def _claim(self) -> PendingCommit | None:
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def written(self) -> list[Any]:
        """After `write`: the parent's raw log entries after `last_seen`; raises what the write raised."""
        with self._done:  # released once written: taken and given back, so a second call returns too
            pass
        if self._error is not None:
            raise self._error
        return self._entries


class HeldCommits:
    """Writes each held commit whose child is still running `hold_ms` after it was held."""

    def __init__(self, leases: Leases, hold_ms: int) -> None:
        self.leases = leases
        self.hold_s = hold_ms / 1000
        self._heap: list[tuple[float, int, Held]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="dolmen-held", daemon=True)
        self._thread.start()

    def hold(self, pending: PendingCommit) -> Held:
        """Hold `pending` back; the thread writes it `hold_ms` from now unless the call's own write took it first."""
        held = Held(pending)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + self.hold_s, next(self._order), held))
            if len(self._heap) == 1:
                self._cond.notify()
        return held

    def close(self) -> None:
        """Stop the thread (waiting up to 5 s); commits still held are left to their calls' own writes."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    # Due ones are collected at most every 20 ms: most were taken by then.
                    self._cond.wait(None if not self._heap else max(self._heap[0][0] - time.monotonic(), 0.02))
                if self._stopped:
                    return
                now = time.monotonic()
                due: list[Held] = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
            for held in due:
                try:
                    held.write(self.leases)
                except Exception:  # noqa: BLE001 - kept in `held`; this thread must go on
                    log.exception("could not write a held commit")
