"""Async reads of executions for the request paths that wait (the gateway's).

Everything runs on the event loop with the asyncio Redis client, so a
waiting request holds neither a thread nor a connection: waiting for an
outcome registers a waiter with the process's one `FinishWatcher`, and
following a log live reads it with XREAD BLOCK (at most `MAX_BLOCK_MS` a
call, so a dead server is noticed). redis-py's exceptions are translated to
`StoreError` here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any


from ..errors import NotFoundError, StoreError
from ..ids import ExecutionId
from . import chains, keys
from .async_batch import AsyncBatcher, hash_reply
from .connection import AsyncRedis, map_redis_errors
from .finish_watch import FinishWatcher, Watch
from .follow import LogFollower
from .records import Event, ExecutionState

# How long `chain_end` waits for a chain's next execution to be created (seconds), as the sync store's.
CHAIN_WAIT_S = 5.0


class AsyncExecutions:
    """Read execution state and logs without blocking the event loop (`AsyncExecutionReads`).

    State reads share round trips through `batcher` (a new `AsyncBatcher` of `client` when None); waits for an
    outcome go through one `FinishWatcher`, subscribed by the first `watch` (or `watcher.start()`), stopped by `close`.
    """

    def __init__(self, client: AsyncRedis, batcher: AsyncBatcher | None = None) -> None:
        self.client = client
        self.batcher = batcher or AsyncBatcher(client)
        self.watcher = FinishWatcher(client, self.batcher)

    async def close(self) -> None:
        """Stop the finish watcher (waiters still registered are cancelled); the client and batcher stay open."""
        await self.watcher.close()

    async def ping(self) -> None:
        """PING the store: returns when it answers, raises `StoreError` (or a subclass) when it does not."""
        with map_redis_errors():
            await self.client.ping()  # type: ignore[misc]

    async def get(self, execution_id: str) -> ExecutionState | None:
        """The execution's state; None when it does not exist (or its retention passed).

        Raises `InvalidNameError` for a malformed id, `StoreError` when the store refused the HGETALL.
        """
        eid = ExecutionId.parse(execution_id).value
        commands = self.batcher.commands()
        commands.execute_command("HGETALL", keys.state(eid))
        (reply,) = await self.batcher.execute(commands)
        if isinstance(reply, BaseException):
            raise StoreError(f"Redis refused a command: {reply}")
        return ExecutionState.from_hash(hash_reply(reply)) if reply else None

    async def require(self, execution_id: str) -> ExecutionState:
        """The execution's state; `NotFoundError` (naming GET /v1/executions) when it does not exist, `InvalidNameError`
        for a malformed id."""
        state = await self.get(execution_id)
        if state is None:
            raise NotFoundError(
                f"execution {execution_id} does not exist, or was removed once its retention passed "
                "(GET /v1/executions lists them)"
            )
        return state

    async def events(self, execution_id: str, start: int = 0) -> list[Event]:
        """The log from event `start` (a 0-based index) on, in order; [] for an execution that does not exist.

        Raises `InvalidNameError` for a malformed id.
        """
        eid = ExecutionId.parse(execution_id).value
        with map_redis_errors():
            raw: Any = await self.client.xrange(keys.log(eid))
        return [Event.from_stream(i, sid, fields) for i, (sid, fields) in enumerate(raw) if i >= start]

    def watch(self, execution_id: str) -> Watch:
        """Register a waiter for the execution's outcome; use it as a `with` block.

        `InvalidNameError` for a malformed id.
        """
        return self.watcher.watch(ExecutionId.parse(execution_id).value)

    async def wait_finished(self, execution_id: str, timeout_s: float) -> ExecutionState:
        """The state once finished, or as it is when `timeout_s` (seconds, the whole chain's) runs out.

        A workflow that continued as new is followed along its chain: the
        state returned is that of the last execution reached. Raises
        `NotFoundError` for an unknown execution, `InvalidNameError` for a
        malformed id.
        """
        deadline = time.monotonic() + timeout_s
        return await self._follow_chain(await self._wait_one(execution_id, timeout_s), deadline)

    async def _wait_one(self, execution_id: str, timeout_s: float) -> ExecutionState:
        if timeout_s <= 0:
            return await self.require(execution_id)
        # Registered before the read: a finish after the read is notified to it.
        with self.watch(execution_id) as watch:
            state = await self.require(execution_id)
            if state.status == "finished":
                return state
            return await self._outcome_one(watch, timeout_s)

    async def outcome(self, watch: Watch, timeout_s: float) -> ExecutionState:
        """The state once finished, or as it is when `timeout_s` runs out (following a chain, as `wait_finished`).

        `watch` must have been registered before the execution was last seen
        unfinished (read, or created by this caller). `timeout_s` is in seconds;
        `NotFoundError` when the execution is gone once the wait is over.
        """
        deadline = time.monotonic() + timeout_s
        return await self._follow_chain(await self._outcome_one(watch, timeout_s), deadline)

    async def _outcome_one(self, watch: Watch, timeout_s: float) -> ExecutionState:
        state = await watch.wait(timeout_s)
        return state if state is not None else await self.require(watch.execution_id)

    async def chain_end(self, execution_id: str) -> ExecutionState:
        """The execution a chain of continue-as-new has reached from `execution_id` (itself if it did not continue).

        Waits up to CHAIN_WAIT_S (seconds) per step for a successor to be created; one that does not appear
        ends the chain there. Raises `NotFoundError` for an unknown execution, `InvalidNameError` for a malformed id.
        """
        state = await self.require(execution_id)
        while (successor := await self._next_in_chain(state, time.monotonic() + CHAIN_WAIT_S)) is not None:
            state = successor
        return state

    async def _follow_chain(self, state: ExecutionState, deadline: float) -> ExecutionState:
        while (found := await self._next_in_chain(state, deadline)) is not None:
            state = found if chains.settled(found) else await self._wait_one(found.id, deadline - time.monotonic())
        return state

    async def _next_in_chain(self, state: ExecutionState, deadline: float) -> ExecutionState | None:
        """The next execution of `state`'s chain to look at (see `chains.next_step`); None at the chain's end.

        Also None when the successor `state` names does not appear by `deadline` (monotonic s).
        """
        if chains.continued_as(state) is None:
            return None  # no read of the head: most executions are no chain
        with map_redis_errors():
            head: Any = await self.client.get(keys.chain_head(chains.position(state)[0]))
        step = chains.next_step(state, head)
        if step is None:
            return None
        found = await self.get(step.ahead) if step.ahead is not None else None
        while found is None and (found := await self.get(step.successor)) is None:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(chains.POLL_S)
        return found

    async def follow(self, execution_id: str, *, after: int = -1, timeout_s: float) -> AsyncIterator[Event | None]:
        """The log's events with an index above `after`, then those appended, until `finished` or `timeout_s`.

        Yields None each time a blocking read (at most `MAX_BLOCK_MS`) returns nothing, so a caller
        can send a keep-alive or notice a client that went away; the sync store's `follow` does the
        same (`LogFollower` decides for both). `timeout_s` is in seconds. Raises `NotFoundError` for an
        unknown execution, `InvalidNameError` for a malformed id.
        """
        follower = LogFollower((await self.require(execution_id)).id, after=after, deadline=time.monotonic() + timeout_s)
        with map_redis_errors():
            entries: Any = await self.client.xrange(follower.key)
        for event in follower.take_log(entries):
            yield event
        while (read := follower.next_read(time.monotonic())) is not None:
            with map_redis_errors():
                reply: Any = await self.client.xread(read.streams, block=read.block_ms)  # type: ignore[arg-type]
            for item in follower.take_read(reply):
                yield item
