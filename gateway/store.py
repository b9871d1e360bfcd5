"""Async reads of executions for the request paths that wait.

Waiting for a result and following a log run on the event loop with the
asyncio Redis client (XREAD BLOCK on the execution's log), so a waiting
request holds a connection, not a thread. Each blocking call waits at most
`MAX_BLOCK_MS`, so a dead server is noticed. redis-py's exceptions are
translated to `StoreError` here, as in `platform/store/`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio

from ..platform.errors import NotFoundError
from ..platform.ids import ExecutionId
from ..platform.store import keys
from ..platform.store.connection import MAX_BLOCK_MS, map_redis_errors
from ..platform.store.records import FINISHED, Event, ExecutionState


class AsyncExecutions:
    """Read execution state and logs without blocking the event loop."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client

    async def ping(self) -> None:
        with map_redis_errors():
            await self.client.ping()  # type: ignore[misc]

    async def get(self, execution_id: str) -> ExecutionState | None:
        eid = ExecutionId.parse(execution_id).value
        with map_redis_errors():
            raw: dict[bytes, bytes] = await self.client.hgetall(keys.state(eid))  # type: ignore[misc]
        return ExecutionState.from_hash(raw) if raw else None

    async def require(self, execution_id: str) -> ExecutionState:
        state = await self.get(execution_id)
        if state is None:
            raise NotFoundError(f"execution {execution_id} does not exist (GET /v1/executions lists them)")
        return state

    async def events(self, execution_id: str) -> list[Event]:
        """The whole log, in order."""
        eid = ExecutionId.parse(execution_id).value
        with map_redis_errors():
            raw: Any = await self.client.xrange(keys.log(eid))
        return [Event.from_stream(i, sid, fields) for i, (sid, fields) in enumerate(raw)]

    async def _last_stream_id(self, execution_id: str) -> tuple[str, bool]:
        """The id of the last event and whether it is `finished`."""
        with map_redis_errors():
            raw: Any = await self.client.xrevrange(keys.log(execution_id), count=1)
        if not raw:
            return "0-0", False
        sid, fields = raw[0]
        return sid.decode(), fields.get(b"t") == FINISHED.encode()

    async def _read_after(self, execution_id: str, last_id: str, block_ms: int) -> list[tuple[str, dict[bytes, bytes]]]:
        with map_redis_errors():
            reply: Any = await self.client.xread({keys.log(execution_id): last_id}, block=max(1, block_ms))
        if not reply:
            return []
        return [(sid.decode(), fields) for sid, fields in reply[0][1]]

    async def wait_finished(self, execution_id: str, timeout_s: float) -> ExecutionState:
        """The state once finished, or as it is when `timeout_s` runs out."""
        state = await self.require(execution_id)
        if state.status == "finished" or timeout_s <= 0:
            return state
        eid = state.id
        deadline = time.monotonic() + timeout_s
        # The finished event and the state change are written by one script,
        # so an event after `last_id` is the one that finishes it, if any.
        last_id, finished = await self._last_stream_id(eid)
        while not finished and (remaining := deadline - time.monotonic()) > 0:
            new = await self._read_after(eid, last_id, int(min(remaining * 1000, MAX_BLOCK_MS)))
            for sid, fields in new:
                last_id = sid
                finished = finished or fields.get(b"t") == FINISHED.encode()
        return await self.require(eid)

    async def follow(self, execution_id: str, *, after: int, timeout_s: float) -> AsyncIterator[Event | None]:
        """Events with index > `after`, live, until `finished` or `timeout_s`.

        Yields None each time a blocking read returns nothing, so a caller
        can send a keep-alive or notice a client that went away.
        """
        eid = (await self.require(execution_id)).id
        deadline = time.monotonic() + timeout_s
        events = await self.events(eid)
        for event in events:
            if event.index > after:
                yield event
        if events and events[-1].type == FINISHED:
            return
        last_id = events[-1].stream_id if events else "0-0"
        index = len(events)
        while (remaining := deadline - time.monotonic()) > 0:
            new = await self._read_after(eid, last_id, int(min(remaining * 1000, MAX_BLOCK_MS)))
            if not new:
                yield None
            for sid, fields in new:
                event = Event.from_stream(index, sid, fields)
                last_id, index = sid, index + 1
                if event.index > after:
                    yield event
                if event.type == FINISHED:
                    return
