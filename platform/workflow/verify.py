"""Replay an execution's log against a component without writing anything.

Used by `platform replay` (a determinism check, and a test of a new version
before deploying it) and by upgrades (an unfinished execution moves to a new
digest only when its whole log replays cleanly on it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import (
    CancelledError,
    ChildFailedError,
    DolmenError,
    ContinueAsNewError,
    ExecutionTimeoutError,
    HistoryLimitError,
    NonDeterminismError,
    TrapError,
    ValueTooLargeError,
)
from ..store.creates import NewExecution
from ..store.records import FINISHED, Event, Outcome
from ..wasm.loader import LoadedComponent
from .driver import ContinueAsNew, ReachedEndOfLog, ReadOnlyDriver, Target
from .run_context import RunContext
from .replay import Replay, json_equal
from .sandbox import WorkflowSandbox


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of a replay: clean, or the first divergence.

    `events` is the log's length; when not `ok`, `event_index` is the
    diverging event's (None when the code failed without one), `logged` and
    `requested` describe what the log holds and what the code did.
    """

    ok: bool
    events: int
    event_index: int | None = None
    logged: str | None = None
    requested: str | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """`{"ok", "events"}`, and when not ok `event_index`, `logged`, `requested`, `message`."""
        data: dict[str, Any] = {"ok": self.ok, "events": self.events}
        if not self.ok:
            data.update(event_index=self.event_index, logged=self.logged, requested=self.requested, message=self.message)
        return data

    def describe(self) -> str:
        """One line for people: `ok (N events)`, or the divergence's message."""
        return f"ok ({self.events} events)" if self.ok else self.message


class VerifyDriver(ReadOnlyDriver):
    """Never writes; stops the run where the log ends."""

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        """Never reached (`past_end` stops a new request first): `ReachedEndOfLog`."""
        raise ReachedEndOfLog(None)  # pragma: no cover - past_end raises before anything is buffered

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        """The code waits past the log: `ReachedEndOfLog`."""
        raise ReachedEndOfLog(None)

    def resolve(self, ffqn: str) -> Target:  # pragma: no cover - only new requests resolve
        """Never reached (only new requests resolve): `ReachedEndOfLog`."""
        raise ReachedEndOfLog(ffqn)


def verify(
    sandbox: WorkflowSandbox,
    loaded: LoadedComponent,
    execution_id: str,
    ffqn: str,
    events: list[Event],
    *,
    timeout_ms: int | None = 60_000,
) -> Verdict:
    """Replay `events` (a whole log) on `loaded`; a finished log must end the same way.

    Never raises for what the code does: every divergence or failure is a
    `Verdict` that is not ok. `timeout_ms` bounds the guest's time.
    """
    replay = Replay(execution_id, list(events))
    finished = replay.finished
    ctx = RunContext(execution_id, ffqn, replay, VerifyDriver())
    count = len(events)
    try:
        value = sandbox.invoke(loaded, ctx, timeout_ms=timeout_ms, memory_bytes=None)
        ctx.closing()
    except ReachedEndOfLog as end:
        if finished is None:
            return Verdict(True, count)
        if end.request is None:
            return _diverged(count, finished, "a response that the log does not hold", "the code waits for")
        return _diverged(count, finished, end.request, "the code asked for")
    except NonDeterminismError as exc:
        return Verdict(False, count, exc.event_index, exc.logged, exc.requested, str(exc))
    except ContinueAsNew as cont:
        leftover = ctx.replay.leftover_error()
        if leftover is not None:
            return Verdict(False, count, leftover.event_index, leftover.logged, leftover.requested, str(leftover))
        return _continued_like(count, finished, cont.params)
    except (CancelledError, ChildFailedError, ValueTooLargeError, HistoryLimitError, ContinueAsNewError) as exc:
        return _ended_like(count, finished, exc)
    except (TrapError, ExecutionTimeoutError) as exc:
        # A finished log that ended in the same failure replays cleanly; a running
        # execution whose code now traps (or runs too long) does not.
        if finished is not None:
            return _ended_like(count, finished, exc)
        return Verdict(False, count, None, None, None, f"the code failed while replaying: {exc}")
    except DolmenError as exc:
        return Verdict(False, count, None, None, None, f"the code failed while replaying: {exc}")
    if finished is None:
        return Verdict(True, count)
    logged = Outcome.from_json(finished.data)
    if logged.failure is not None or logged.continued_as is not None or not json_equal(logged.value, value):
        return Verdict(
            False,
            count,
            finished.index,
            _describe_outcome(logged),
            f"return {json.dumps(value)}",
            f"non-determinism at event {finished.index}: the log holds {_describe_outcome(logged)} "
            f"but the code returned {json.dumps(value)}",
        )
    return Verdict(True, count)


def _continued_like(count: int, finished: Event | None, params: list[Any]) -> Verdict:
    """A run that continued as new is clean if the log did the same with the same params (or is unfinished)."""
    if finished is None:
        return Verdict(True, count)
    logged = Outcome.from_json(finished.data)
    if logged.continued_as is not None and json_equal(finished.data.get("params"), params):
        return Verdict(True, count)
    requested = f"continue-as-new {json.dumps(params)}"
    return Verdict(
        False,
        count,
        finished.index,
        _describe_outcome(logged),
        requested,
        f"non-determinism at event {finished.index}: the log holds {_describe_outcome(logged)} but the code asked for {requested}",
    )


def _ended_like(count: int, finished: Event | None, exc: DolmenError) -> Verdict:
    """A run that failed is clean if the log ended with a failure of the same kind."""
    if finished is None:
        return Verdict(True, count)
    logged = Outcome.from_json(finished.data)
    if logged.failure is not None and logged.failure.kind == getattr(exc, "kind", ""):
        return Verdict(True, count)
    return Verdict(False, count, finished.index, _describe_outcome(logged), str(exc), f"replay ended differently: {exc}")


def _diverged(count: int, finished: Event, requested: str, verb: str) -> Verdict:
    logged = f"{FINISHED}({_describe_outcome(Outcome.from_json(finished.data))})"
    return Verdict(
        False,
        count,
        finished.index,
        logged,
        requested,
        f"non-determinism at event {finished.index}: the log holds {logged} but {verb} {requested}",
    )


def _describe_outcome(outcome: Outcome) -> str:
    if outcome.failure is not None:
        return f"failure {outcome.failure.kind}"
    if outcome.continued_as is not None:
        return f"continued as {outcome.continued_as}"
    return f"return {json.dumps(outcome.value)}"

