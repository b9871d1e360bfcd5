"""The port a workflow run performs its I/O through (`Driver`), and what it raises to stop.

`RunContext` (run_context.py) decides; a driver writes and waits: the executor's
live one against the store, the verifier's read-only one against a recorded log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..model import FunctionRoute, Revision
from ..store.creates import NewExecution
from ..store.records import Event

if TYPE_CHECKING:
    from .run_context import RunContext


class Unload(Exception):
    """Raised through the guest to drop the instance; the workflow resumes by replay."""


class ContinueAsNew(Exception):
    """Raised through the guest when it continues as new: its run ends, and the executor finishes it.

    `params` are the new execution's, canonical JSON, checked against the function's WIT params.
    """

    def __init__(self, params: list[Any]) -> None:
        super().__init__("continue as new")
        self.params = params


class ReachedEndOfLog(Exception):
    """Verification only: the code went past what the log records."""

    def __init__(self, request: str | None = None) -> None:
        super().__init__(request or "waiting")
        self.request = request


@dataclass(frozen=True, slots=True)
class Target:
    """Where a child call goes: the deployed function and its component."""

    ffqn: str
    kind: str
    digest: str
    revision: int | None
    component: str | None
    # The function's retention in ms (None: the platform's default); kept by a scheduled execution, a root.
    retention_ms: int | None = None

    @classmethod
    def of_route(cls, revision: Revision, route: FunctionRoute) -> Target:
        """Where `route` of the deployed `revision` runs."""
        return cls(
            route.ffqn, route.kind, route.component.digest, revision.number, route.component.name,
            route.component.retention_for(route.ffqn),
        )  # fmt: skip


class Driver(Protocol):
    """Performs a run's I/O."""

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        """Write new requests (`(event type, data, ms)`) and the executions they start; return the log tail.

        The tail is every event after what `ctx.replay` holds, our own requests
        included. Raises `FencedError` when the run's lease was lost, and
        `StoreError` when the store cannot take the write.
        """
        ...

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        """Return new log events, or raise `Unload` / `ReachedEndOfLog`.

        `not_before` (ms) says that no awaited response can come before then
        (the workflow waits for delays only), so waiting in memory is pointless.
        """
        ...

    def resolve(self, ffqn: str) -> Target:
        """Which component runs `ffqn` (for new children)."""
        ...

    def eager_lock(self, target: Target) -> tuple[str, int] | None:
        """(owner, lock ttl) to create a directly called child pre-locked and run it at once, or None."""
        ...


class ReadOnlyDriver:
    """Marker base of drivers that must not write (verification)."""

    def eager_lock(self, target: Target) -> tuple[str, int] | None:
        """Never: verification creates nothing."""
        return None

    def past_end(self, request: str) -> None:
        """The code asked for `request` (described) past the recorded log: raise `ReachedEndOfLog`."""
        raise ReachedEndOfLog(request)
