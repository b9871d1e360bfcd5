"""Round trips shared by everything a process does on its event loop: one connection, one pipeline in flight.

The gateway's hot path (creates, their outbox effects, reads of finished
executions) is many small pipelines. Through redis-py's asyncio Pipeline
each costs about 100 µs of CPU before the server does anything; here
callers record commands with redis-py's own command builders (`Commands`)
and hand them to `AsyncBatcher`, which sends whatever was queued while the
previous round trip was under way as one pipeline and reads the raw RESP2
replies. Under load, that is one round trip for the creates, effects and
reads of a whole loop tick; alone, a call still costs one round trip.

A connection error re-sends the round trip (a few times, with backoff; see
`async_links`, which also routes each command to its master on a cluster),
as redis-py's retry does: every Dolmen write carries a write id, so a repeat
is answered as the first (see lua/_prelude.lua); the other commands sent
here are idempotent. Script calls answered NOSCRIPT (the
server restarted or was flushed) are loaded and repeated.

With `wait` (the gateway's --wait-replicas), every round trip that writes
waits for that many replicas of each master it wrote to (see
`async_links.ReplicaWait`); a call whose write they did not confirm in time
gets `ReplicaWaitError` in place of its reply, so it fails as a round trip
cut after the write does: what must follow it (its effects) is left to the
outbox sweep, and the caller may send it again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from redis.commands.core import CoreCommands
from redis.exceptions import ResponseError

from ..errors import ReplicaWaitError, StoreError
from .async_links import ClusterLink, Link, Replies, ReplicaWait, link_for
from .connection import AsyncRedis, translated

from . import shards as sharding
from .scripts import NAMES, direct_effects, is_noscript, source
from .shards import Shards

log = structlog.get_logger("dolmen.store")

Then = Callable[[Replies | BaseException], None]


class Commands(CoreCommands):  # type: ignore[misc]  # redis-py's builders; only execute_command is ours
    """Commands recorded for one `AsyncBatcher` call, with redis-py's method names (`zadd`, `hgetall`, ...).

    Script calls go by name (`script("create", keys, args)`). The replies
    come back raw: RESP2 values, an error reply as its exception in place.
    """

    def __init__(self, shas: dict[str, str], *, ordered: bool = True, shards: Shards | None = None, direct: bool = False) -> None:
        # Whether the commands run in the order recorded (not on a cluster: see `async_links.ClusterLink`).
        self.ordered = ordered
        # Whether the write scripts carry out their outbox messages themselves (`scripts.Scripts.direct`).
        self.direct = direct
        self._shards = shards
        self.args: list[tuple[Any, ...]] = []
        self.scripts: dict[int, tuple[str, list[str], list[Any]]] = {}
        self.first: list[int] = []  # positions of calls sent ahead of the rest (only when not `ordered`)
        self._shas = shas

    def __len__(self) -> int:
        return len(self.args)

    @property
    def shards(self) -> Shards:
        """The store's shards, for commands on queue, timer and index keys (`AsyncBatcher.ready` reads them)."""
        if self._shards is None:
            raise RuntimeError("the store's shards are not known yet: await AsyncBatcher.ready() before recording")
        return self._shards

    def execute_command(self, *args: Any, **options: Any) -> Commands:
        """Record one command (`args`: its name and arguments, as redis-py's builders pass them); sends nothing."""
        self.args.append(args)
        return self

    def script(self, name: str, keys: list[str], args: list[Any], *, first: bool = False) -> int:
        """Record a call of script `name`; returns its position in the replies.

        `first`: it must have run before the commands recorded after it are
        sent (as `scripts.Pipeline.script`; on a cluster, a round trip ahead).
        """
        if not self._shas:
            # Which scripts (`Scripts.direct`) depends on the shards: calling the other kind would lose effects.
            raise RuntimeError("the store's scripts are not chosen yet: await AsyncBatcher.ready() before recording")
        if first and not self.ordered:
            self.first.append(len(self.args))
        self.scripts[len(self.args)] = (name, keys, args)
        self.args.append(("EVALSHA", self._shas[name], len(keys), *keys, *args))
        return len(self.args) - 1


class AsyncBatcher:
    """Sends recorded commands in shared round trips over one dedicated connection (one per master of a cluster)."""

    def __init__(self, client: AsyncRedis, *, max_commands: int = 4096, wait: ReplicaWait | None = None) -> None:
        self.client = client
        self.wait = wait
        self._link: Link = link_for(client, wait)
        self.max_commands = max_commands
        # redis-py's `AsyncScript`s, for their source and SHA; called through this batcher's own round trips.
        # Chosen by `ready`, once the shards are known (see `scripts.Scripts.direct`).
        self._scripts: dict[str, Any] = {}
        self._shas: dict[str, str] = {}
        self._direct = False
        self._queue: deque[tuple[Commands, asyncio.Future[Replies] | None, Then | None]] = deque()
        # Calls that may wait for company (see `send`): they go out with the next round trip.
        self._lingering: deque[tuple[Commands, asyncio.Future[Replies] | None, Then | None]] = deque()
        self._linger_timer: asyncio.TimerHandle | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Observable by tests and metrics.
        self.round_trips = 0
        self._shards: Shards | None = None

    async def ready(self) -> Shards:
        """The store's shards, read at the first call (see `store.shards`); commands recorded after it may use them
        and the scripts.

        Raises `ConfigError` as `shards.settled` does, `StoreError` when the store cannot be read.
        """
        if self._shards is None:
            shards = await sharding.load_async(self.client)
            self._direct = direct_effects(isinstance(self._link, ClusterLink), shards)
            self._scripts = {name: self.client.register_script(source(name, self._direct)) for name in NAMES}
            self._shas = {name: script.sha for name, script in self._scripts.items()}
            self._shards = shards
        return self._shards

    def commands(self) -> Commands:
        """An empty recording to fill and pass to `execute` or `send` (script calls only after `ready`)."""
        return Commands(self._shas, ordered=not isinstance(self._link, ClusterLink), shards=self._shards, direct=self._direct)  # pyright: ignore[reportAbstractUsage]  # redis-py's protocols, not abstract at run time

    async def execute(self, commands: Commands, then: Then | None = None) -> Replies:
        """The replies to `commands`, one per command in order, sent with whatever else is queued.

        An error reply is its exception in place (`ReplicaWaitError` for a
        write its replicas did not confirm); a failed round trip raises
        `StoreError` (`StoreUnavailableError`, `StoreAccessError`), and so does
        a call once `close` began. `then`, as in `send`, runs on the replies
        even when the caller was cancelled meanwhile.
        """
        if self._closing:
            raise StoreError("this process is shutting down; nothing more is sent to Redis")
        future: asyncio.Future[Replies] = asyncio.get_running_loop().create_future()
        self._enqueue(commands, future, then)
        return await future

    def send(self, commands: Commands, then: Then | None = None, *, linger_s: float = 0.0) -> None:
        """Queue `commands` without waiting; `then(replies or error)` runs once they are answered.

        `then` runs even if the caller is gone (a cancelled request), so it can
        carry out what must follow an accepted write. With `linger_s`, the
        commands wait that long for another call to go out with (not once `close` began).
        """
        if linger_s <= 0 or self._closing:
            self._enqueue(commands, None, then)
            return
        self._lingering.append((commands, None, then))
        if self._linger_timer is None:
            self._linger_timer = asyncio.get_running_loop().call_later(linger_s, self._end_linger)

    def _end_linger(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._lingering:
            self._kick()

    async def confirm(self) -> None:
        """Return once `wait`'s replicas confirmed everything each master had run, whoever wrote it.

        For writes this batcher did not send (the gateway's cancels go through
        the synchronous client): a barrier on every master, each followed by
        WAIT. Raises `ReplicaWaitError` when one fell short; without `wait`,
        returns at once.
        """
        if self.wait is None:
            return
        commands = self.commands()
        for args in await self._link.barriers():
            commands.execute_command(*args)
        for reply in await self.execute(commands):
            if isinstance(reply, BaseException):
                raise translated(reply) if isinstance(reply, Exception) else reply

    @property
    def pending(self) -> int:
        """Calls queued and not sent yet (a hint)."""
        return len(self._queue) + len(self._lingering)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued, then drop the connection."""
        self._closing = True
        if self._lingering:
            self._end_linger()
        if self._task is not None and not self._task.done():
            self._kick()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                log.warning("store calls left unsent at close", calls=len(self._queue))
                self._task.cancel()
        await self._drop_connection()

    # ------------------------------------------------------------ queueing

    def _enqueue(self, commands: Commands, future: asyncio.Future[Replies] | None, then: Then | None) -> None:
        if not commands.args:
            if future is not None:
                future.set_result([])
            if then is not None:
                then([])
            return
        self._queue.append((commands, future, then))
        self._kick()

    def _kick(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="dolmen-store-batcher")

    async def _run(self) -> None:
        wake = self._wake or asyncio.Event()
        while True:
            if self._queue or self._lingering and self._linger_timer is None:
                await self._send_batch()
            elif self._closing:
                return
            else:
                wake.clear()
                await wake.wait()

    async def _send_batch(self) -> None:
        batch: list[tuple[Commands, asyncio.Future[Replies] | None, Then | None]] = []
        count = 0
        if self._lingering:
            if self._linger_timer is not None:
                self._linger_timer.cancel()
                self._linger_timer = None
            self._queue.extendleft(reversed(self._lingering))
            self._lingering.clear()
        while self._queue and (not batch or count + len(self._queue[0][0].args) <= self.max_commands):
            item = self._queue.popleft()
            batch.append(item)
            count += len(item[0].args)
        args = [a for commands, _, _ in batch for a in commands.args]
        try:
            if any(commands.first for commands, _, _ in batch):
                replies = await self._two_phases(batch, args)
            else:
                replies = await self._round_trip(args)
            await self._repeat_noscript(args, replies)
        except asyncio.CancelledError:
            for _, future, _ in batch:
                if future is not None:
                    future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
            error = exc if isinstance(exc, StoreError) else StoreError(f"Redis failed: {exc}")
            for _, future, then in batch:
                _deliver(future, then, error)
            return
        start = 0
        for commands, future, then in batch:
            end = start + len(commands.args)
            _deliver(future, then, replies[start:end])
            start = end

    async def _two_phases(
        self, batch: list[tuple[Commands, asyncio.Future[Replies] | None, Then | None]], args: list[tuple[Any, ...]]
    ) -> Replies:
        """The `first` calls of every caller in one round trip, then the rest of those whose `first` calls succeeded."""
        replies: Replies = [None] * len(args)
        spans: list[tuple[int, int, list[int]]] = []
        start = 0
        for commands, _, _ in batch:
            spans.append((start, start + len(commands.args), [start + p for p in commands.first]))
            start += len(commands.args)
        ahead = [p for _, _, firsts in spans for p in firsts]
        for position, reply in zip(ahead, await self._round_trip([args[p] for p in ahead])):
            replies[position] = reply
        await self._repeat_noscript(args, replies, ahead)
        rest: list[int] = []
        for begin, end, firsts in spans:
            # Not a refusal: the master ran it, so what must follow it may go (its caller learns the shortfall).
            failed = next((replies[p] for p in firsts if _refused(replies[p])), None)
            others = [p for p in range(begin, end) if p not in firsts]
            if failed is not None:
                for p in others:
                    replies[p] = failed  # not sent: it needed the failed call first
            else:
                rest += others
        if rest:
            for position, reply in zip(rest, await self._round_trip([args[p] for p in rest])):
                replies[position] = reply
        return replies

    async def _repeat_noscript(self, args: list[tuple[Any, ...]], replies: Replies, only: list[int] | None = None) -> None:
        """Load the scripts and repeat the script calls (of `only`, when given) the server did not know."""
        failed = [
            p for p in (range(len(args)) if only is None else only)
            if isinstance(replies[p], ResponseError) and is_noscript(replies[p])
        ]  # fmt: skip
        if not failed:
            return
        loads: list[tuple[Any, ...]] = [("SCRIPT", "LOAD", script.script) for script in self._scripts.values()]
        again = await self._round_trip(loads + [args[p] for p in failed])
        for position, reply in zip(failed, again[len(loads) :]):
            replies[position] = reply

    # ---------------------------------------------------------- connection

    async def _round_trip(self, args: list[tuple[Any, ...]]) -> Replies:
        replies = await self._link.round_trip(args)
        self.round_trips += 1
        return replies

    async def _drop_connection(self) -> None:
        await self._link.close()


def hash_reply(reply: Any) -> dict[bytes, bytes]:
    """A raw HGETALL reply (RESP2: a flat list of fields and values) as a dict."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2]))


def _refused(reply: Any) -> bool:
    return isinstance(reply, Exception) and not isinstance(reply, ReplicaWaitError)


def _deliver(future: asyncio.Future[Replies] | None, then: Then | None, outcome: Replies | BaseException) -> None:
    if then is not None:
        try:
            then(outcome)
        except Exception:  # noqa: BLE001 - one caller's bug must not stop the others' replies
            log.exception("a store call's follow-up failed")
    if future is not None and not future.done():
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


__all__ = ["AsyncBatcher", "Commands", "hash_reply"]
