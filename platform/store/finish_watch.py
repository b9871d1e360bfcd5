"""Waiting for executions to finish: one subscription per process, any number of waiters.

The script that writes an execution's `finished` event publishes its id on
`keys.FINISHED_CHANNEL` (`notify_finished` in lua/_prelude.lua). A process
holds one subscription to that channel; a waiter registers an asyncio
future keyed by the execution id, and the listener resolves it with the
finished state, read in one pipeline for every id of a burst of messages.

A notification is a hint, not a record, so nothing waits on one alone:
register before reading the state (a finish between the two is then either
seen by the read or notified); every registered waiter is read again once
the subscription is (re)established, and all of them every `recheck_s`; the
subscription is pinged as often, and a connection that does not answer is
replaced. A lost message only delays a waiter, by at most `recheck_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ..backoff import Backoff
from ..errors import StoreError
from . import keys
from .async_batch import AsyncBatcher, hash_reply
from .connection import AsyncRedis, dedicated_connection
from .records import ExecutionState

log = structlog.get_logger("dolmen.store")

RECHECK_S = 5.0
# Pauses before subscribing again; back to the first after each subscription that worked.
RESUBSCRIBE_BACKOFF = Backoff(initial=0.05, cap=2.0)


class Watch:
    """A registered waiter for one execution; leave the `with` block to unregister it."""

    __slots__ = ("watcher", "execution_id", "future")

    def __init__(self, watcher: FinishWatcher, execution_id: str, future: asyncio.Future[ExecutionState | None]) -> None:
        self.watcher = watcher
        self.execution_id = execution_id
        self.future = future

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.watcher._forget(self)

    async def wait(self, timeout_s: float) -> ExecutionState | None:
        """The finished state, or None when `timeout_s` runs out first (once per watch)."""
        future = self.future
        if not future.done():
            if timeout_s <= 0:
                return None
            # A bare timer rather than asyncio.timeout: this runs once per waiting request.
            timer = asyncio.get_running_loop().call_later(timeout_s, _time_out, future)
            try:
                return await future
            finally:
                timer.cancel()
        return future.result()


def _time_out(future: asyncio.Future[ExecutionState | None]) -> None:
    if not future.done():
        future.set_result(None)


class FinishWatcher:
    """The process's one subscription to finish notifications, and the waiters it resolves."""

    def __init__(self, client: AsyncRedis, batcher: AsyncBatcher, *, recheck_s: float = RECHECK_S) -> None:
        self.client = client
        self.batcher = batcher
        self.recheck_s = recheck_s
        self._waiters: dict[str, list[asyncio.Future[ExecutionState | None]]] = {}
        self._to_read: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connection: Any = None
        self._closed = False
        # Observable by tests and metrics.
        self.subscriptions = 0
        self.notifications = 0
        self.subscribed = asyncio.Event()

    # ------------------------------------------------------------ waiters

    @property
    def waiting(self) -> int:
        """How many executions have a registered waiter."""
        return len(self._waiters)

    @property
    def reading(self) -> bool:
        """Whether a read of waiters' states is queued or under way."""
        return self._reader is not None or bool(self._to_read)

    def watch(self, execution_id: str) -> Watch:
        """Register a waiter for `execution_id` (starts the subscription on first use)."""
        if not self._tasks and not self._closed:
            self.start()
        future: asyncio.Future[ExecutionState | None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(execution_id, []).append(future)
        return Watch(self, execution_id, future)

    def _forget(self, watch: Watch) -> None:
        futures = self._waiters.get(watch.execution_id)
        if futures is None:
            return
        with contextlib.suppress(ValueError):
            futures.remove(watch.future)
        if not futures:
            del self._waiters[watch.execution_id]
        if not watch.future.done():
            watch.future.cancel()

    def _resolve(self, state: ExecutionState) -> None:
        for future in self._waiters.pop(state.id, ()):
            if not future.done():
                future.set_result(state)

    # ----------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Subscribe and keep the subscription up (called by the first `watch`)."""
        if self._tasks or self._closed:
            return
        self._tasks = [
            asyncio.create_task(self._listen(), name="dolmen-finish-listener"),
            asyncio.create_task(self._recheck_forever(), name="dolmen-finish-recheck"),
        ]

    async def close(self) -> None:
        """Unsubscribe; waiters still registered are cancelled."""
        self._closed = True
        for task in [*self._tasks, *([self._reader] if self._reader else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._reader] if self._reader else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()
        self._waiters.clear()

    # -------------------------------------------------------- subscription

    async def _listen(self) -> None:
        pauses = RESUBSCRIBE_BACKOFF.delays()
        pause = next(pauses)
        while True:
            connection: Any = None
            try:
                connection = await dedicated_connection(self.client)
                await connection.send_command("SUBSCRIBE", keys.FINISHED_CHANNEL, check_health=False)
                reply = await connection.read_response(timeout=self.recheck_s * 2)
                if not isinstance(reply, list) or reply[0] != b"subscribe":
                    raise RedisConnectionError(f"SUBSCRIBE was answered {reply!r}")
                self._connection = connection
                self.subscriptions += 1
                self.subscribed.set()
                pauses = RESUBSCRIBE_BACKOFF.delays()
                pause = next(pauses)
                # Whatever finished while no subscription listened is read now.
                self._read_later(self._waiters)
                await self._receive(connection)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("finish notifications interrupted; subscribing again", error=str(exc), retry_in_s=pause)
            except Exception:  # noqa: BLE001 - the listener must survive a bug in one message
                log.exception("finish notifications failed; subscribing again", retry_in_s=pause)
            finally:
                self.subscribed.clear()
                self._connection = None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.disconnect()
            await asyncio.sleep(pause)
            pause = next(pauses)

    async def _receive(self, connection: Any) -> None:
        # The re-check pings every `recheck_s`: silence for two periods means a dead link.
        silence_s = self.recheck_s * 2 + 1
        while True:
            reply = await connection.read_response(timeout=silence_s)
            if reply is None:
                raise RedisConnectionError(f"no message and no answer to a ping for {silence_s:g} s")
            if reply[0] == b"message":
                self.notifications += 1
                execution_id = reply[2].decode()
                if execution_id in self._waiters:
                    self._read_later((execution_id,))

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            connection = self._connection
            if connection is not None:
                with contextlib.suppress(RedisError, OSError):
                    await connection.send_command("PING", check_health=False)
            self._read_later(self._waiters)

    # ------------------------------------------------------------ reading

    def _read_later(self, execution_ids: Any) -> None:
        """Read these executions' states soon, in one pipeline with others, and resolve the finished ones."""
        self._to_read.update(execution_ids)
        if self._to_read and self._reader is None and not self._closed:
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while self._to_read:
                ids = [i for i in self._to_read if i in self._waiters]
                self._to_read.clear()
                if not ids:
                    continue
                commands = self.batcher.commands()
                for execution_id in ids:
                    commands.execute_command("HGETALL", keys.state(execution_id))
                try:
                    replies = await self.batcher.execute(commands)
                except StoreError as exc:
                    log.warning("cannot read finished executions; re-checking later", error=exc.message)
                    return
                for reply in replies:
                    if isinstance(reply, list) and reply:
                        raw = hash_reply(reply)
                        if raw.get(b"status") == b"finished":
                            self._resolve(ExecutionState.from_hash(raw))
        finally:
            self._reader = None
