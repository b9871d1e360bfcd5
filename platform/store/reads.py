"""The execution store's read interface: one Protocol, sync and async, for every reader of executions.

`ExecutionStore` (executions.py, sync: the CLI, the client, runners) and
`AsyncExecutions` (async_executions.py, on the event loop: the gateway)
implement it over the same keys (`keys`) and decoding (`records`), follow
continue-as-new chains with the same pure decision (`chains.next_step`), and
follow a log live with the same `follow.LogFollower`. Callers that only read
depend on these types, not on an implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Protocol

from .records import Event, ExecutionState

if TYPE_CHECKING:
    from .async_executions import AsyncExecutions
    from .executions import ExecutionStore


class ExecutionReads(Protocol):
    """Reads of execution state and logs (blocking)."""

    def get(self, execution_id: str) -> ExecutionState | None:
        """The execution's state; None when it does not exist (or its retention passed)."""
        ...

    def require(self, execution_id: str) -> ExecutionState:
        """The execution's state; `NotFoundError` naming where to list them when it does not exist, `InvalidNameError`
        for a malformed id."""
        ...

    def events(self, execution_id: str, start: int = 0) -> list[Event]:
        """The log from event `start` (a 0-based index) on, in order; [] for an execution that does not exist."""
        ...

    def wait_finished(self, execution_id: str, timeout_s: float) -> ExecutionState:
        """The state once finished, or as it is when `timeout_s` runs out, followed along a continue-as-new chain.

        `timeout_s` (seconds) bounds the whole wait, the chain included. Raises `NotFoundError` for an unknown
        execution, `InvalidNameError` for a malformed id.
        """
        ...

    def chain_end(self, execution_id: str) -> ExecutionState:
        """The execution a continue-as-new chain has reached from `execution_id` (itself if it did not continue).

        Raises `NotFoundError` for an unknown execution, `InvalidNameError` for a malformed id.
        """
        ...

    def follow(self, execution_id: str, *, after: int = -1, timeout_s: float) -> Iterator[Event | None]:
        """The log's events with an index above `after`, then those appended, until `finished` or `timeout_s`.

        None for each blocking read that waited in vain (at most `MAX_BLOCK_MS`): a caller's chance to send a
        keep-alive or notice its client left. `timeout_s` is in seconds. Raises `NotFoundError` for an unknown
        execution, `InvalidNameError` for a malformed id.
        """
        ...


class AsyncExecutionReads(Protocol):
    """`ExecutionReads` on the event loop: the same operations, awaited."""

    async def get(self, execution_id: str) -> ExecutionState | None:
        """The execution's state; None when it does not exist (or its retention passed)."""
        ...

    async def require(self, execution_id: str) -> ExecutionState:
        """The execution's state; `NotFoundError` naming where to list them when it does not exist, `InvalidNameError`
        for a malformed id."""
        ...

    async def events(self, execution_id: str, start: int = 0) -> list[Event]:
        """The log from event `start` (a 0-based index) on, in order; [] for an execution that does not exist."""
        ...

    async def wait_finished(self, execution_id: str, timeout_s: float) -> ExecutionState:
        """The state once finished, or as it is when `timeout_s` runs out, followed along a continue-as-new chain.

        `timeout_s` (seconds) bounds the whole wait, the chain included. Raises `NotFoundError` for an unknown
        execution, `InvalidNameError` for a malformed id.
        """
        ...

    async def chain_end(self, execution_id: str) -> ExecutionState:
        """The execution a continue-as-new chain has reached from `execution_id` (itself if it did not continue).

        Raises `NotFoundError` for an unknown execution, `InvalidNameError` for a malformed id.
        """
        ...

    def follow(self, execution_id: str, *, after: int = -1, timeout_s: float) -> AsyncIterator[Event | None]:
        """The log's events with an index above `after`, then those appended, until `finished` or `timeout_s`.

        None for each blocking read that waited in vain (at most `MAX_BLOCK_MS`): a caller's chance to send a
        keep-alive or notice its client left. `timeout_s` is in seconds. Raises `NotFoundError` for an unknown
        execution, `InvalidNameError` for a malformed id. (Declared without
        `async`: the implementation is an async generator, called without `await`.)
        """
        ...


if TYPE_CHECKING:

    def _implemented(sync: ExecutionStore, asynchronous: AsyncExecutions) -> tuple[ExecutionReads, AsyncExecutionReads]:
        """Never called: pyright checks here that both stores implement their interface."""
        return sync, asynchronous


__all__ = ["AsyncExecutionReads", "ExecutionReads"]
