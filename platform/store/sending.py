"""How the runner's fenced writes reach the store: sent, resent and checked (the writes themselves are in `leases`).

Each write is one fenced script call that carries a fresh write id, so
redis-py re-sending it after a lost reply is answered as the first time.
Its effects elsewhere (parent wake-ups, queue acks, timers, indexes)
follow only once it answered ok; a refused write raises `FencedError`
having changed nothing. A store that cannot be reached is retried with
the same write id for up to `resend_s`. A full store (over maxmemory)
refused the whole write: it is sent again until the store has room (or
the process stops), the lease kept meanwhile (extend.lua runs also over
maxmemory), so a result waits in the runner instead of being lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..backoff import Backoff
from ..errors import FencedError, LogWentBackError, StoreFullError, StoreUnavailableError
from ..priorities import queue_name
from . import outbox
from .connection import Redis, map_redis_errors, translated
from .deliveries import Deliveries, carry_out
from .group import GroupCommit
from .lease_values import Lease
from .memory import RoomWait
from .scripts import Scripts

# Pauses between sends of a write while the store cannot be reached (within `resend_s`).
RESEND_BACKOFF = Backoff(initial=0.05, cap=1.0)


class Sender:
    """Sends fenced write scripts for `Leases`, which builds on it.

    `resend_s`: seconds a write is sent again (same write id) while the store cannot be reached, before its
    `StoreUnavailableError` is raised. `deliveries` (a write-behind thread) takes an accepted write's effects;
    `group` lets concurrent threads' writes share pipelines. Setting `stopping` ends a wait for a full store.
    """

    def __init__(
        self,
        client: Redis,
        scripts: Scripts | None = None,
        *,
        resend_s: float = 30.0,
        deliveries: Deliveries | None = None,
        group: GroupCommit | None = None,
    ) -> None:
        self.client = client
        self.scripts = scripts or Scripts(client)
        self.resend_s = resend_s
        # Effects of accepted writes go to this write-behind thread when given.
        self.deliveries = deliveries
        # Writes of concurrent threads share pipelines when given (see `group`).
        self.group = group
        # Set when the process stops: a write waiting for a full store gives up (its lease expires).
        self.stopping = threading.Event()

    def _check(self, reply: Any, lease: Lease) -> None:
        """Raise as `check_reply` does; a lease released because its log went back is queued first, to replay at once."""
        if reply_status(reply) == "behind":
            with map_redis_errors():
                queue = queue_name(lease.state.ffqn, lease.state.priority)
                self.scripts.client.xadd(self.scripts.shards.queue(queue, lease.id), {"id": lease.id})
        check_reply(reply, lease)

    def _send(
        self, mark: str | None, name: str, script_keys: list[str], args: list[Any], *, wait_when_full: bool = True
    ) -> Any:
        """Run one write script (writing its dirty `mark` first when it may write outbox messages)."""
        return self._send_many(mark, [(name, script_keys, args)], wait_when_full=wait_when_full)[0]

    def _send_many(
        self, mark: str | None, calls: list[tuple[str, list[str], list[Any]]], *, wait_when_full: bool = True
    ) -> list[Any]:
        """Run write scripts in order in one round trip; their replies.

        `mark` (`outbox.dirty_mark`) goes with the write's effects to `_after`, which removes it.
        """

        def send() -> list[Any]:
            if self.group is not None:
                return self.group.send(mark, calls)
            with map_redis_errors():
                waiting = self.deliveries is not None and self.deliveries.pending
                if mark is None and not waiting and len(calls) == 1:
                    return [self.scripts(*calls[0])]
                pipe = self.scripts.pipeline()
                # Effects of writes accepted earlier ride along, ahead of this script.
                carried = self.deliveries.carry(pipe) if self.deliveries is not None else None
                if mark is not None:
                    outbox.mark_dirty(pipe, mark)
                positions = [pipe.script(name, script_keys, args) for name, script_keys, args in calls]
                try:
                    replies = pipe.execute()
                except BaseException:
                    if carried is not None:
                        carried.failed()
                    raise
                if carried is not None:
                    carried.sent(replies)
                return [replies[p] for p in positions]

        return self._resending(send, calls[-1][0] if wait_when_full else None)

    def _send_each(self, calls: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Scripts that write nothing outside their own keys, in one pipeline; each reply, or the `StoreError` it was."""

        def send() -> list[Any]:
            with map_redis_errors():
                pipe = self.scripts.pipeline()
                for call in calls:
                    pipe.script(*call)
                replies = pipe.execute(raise_errors=False)
            return [translated(reply) if isinstance(reply, Exception) else reply for reply in replies]

        return self._resending(send, None)

    def _resending(self, send: Callable[[], list[Any]], waits_for_room: str | None) -> list[Any]:
        """`send()`, again (with the same write ids) while the store cannot be reached, up to `resend_s`.

        With `waits_for_room` (the script's name, for the log), a full store's
        refusal is waited out too, until it has room or the process stops.
        """
        deadline = time.monotonic() + self.resend_s
        pauses = RESEND_BACKOFF.delays()
        pause = next(pauses)
        room: RoomWait | None = None
        while True:
            try:
                return send()
            except StoreUnavailableError:
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = next(pauses)
            except StoreFullError as exc:
                if waits_for_room is None:
                    raise
                room = room or RoomWait(self.stopping, waits_for_room)
                if not room.pause(exc):
                    raise

    def _after(
        self, root: str, messages: list[str], also: Any = None, *, mark: str | None = None, unwritten: list[str] | None = None
    ) -> None:
        carry_out(self.scripts, self.deliveries, root, messages, also, mark=mark, unwritten=unwritten)


def reply_status(reply: Any) -> str:
    """The status a write script answered with (its reply's first element)."""
    return reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])


def check_reply(reply: Any, lease: Lease) -> None:
    """Return when a fenced write was accepted; raise `LogWentBackError` or `FencedError` when it was refused.

    Accepted: `ok`, `blocked`, `requeued`, `paused`. Refused: `behind` (the log lost entries the runner read:
    `LogWentBackError`), `conflict` (a child it creates exists already) and anything else (`fenced`,
    `finished`, `missing`: the lease is not this runner's any more): `FencedError`.
    """
    status = reply_status(reply)
    if status in ("ok", "blocked", "requeued", "paused"):
        return
    if status == "behind":
        raise LogWentBackError(
            f"execution {lease.id}: its log no longer holds what this runner read (a failover of the store lost"
            " entries it had seen), so its write was refused; it is queued to replay from the log",
            execution_id=lease.id,
        )
    if status == "conflict":
        raise FencedError(f"execution {lease.id}: a child it tried to create already exists ({reply[1]!r})")
    raise FencedError(
        f"execution {lease.id} was taken over by another runner (its lock expired), "
        f"so this runner's write was refused ({status})",
        execution_id=lease.id,
    )
