"""One run of a workflow: what each host call does, on top of `Replay`.

The context turns the guest's calls into requests, matches them against the
log, buffers the new ones, and asks its driver to write them and to wait for
responses. The live driver writes to the store (fenced) and may block in
memory or unload the instance; the verifying driver writes nothing and stops
at the end of the log, which is how `platform replay` and upgrade checks run
the same code paths.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import structlog

from ..model import HistoryLimit
from ..errors import CancelledError, ChildFailedError, ConfigError, ContinueAsNewError, HistoryLimitError, NotFoundError
from ..ids import ExecutionId, seed_number
from ..store.creates import NewExecution
from ..store.clock import now_ms
from ..store.records import (
    CHILD_SUBMITTED,
    DELAY_REQUESTED,
    JOIN_NEXT,
    JOIN_SET_CREATED,
    SCHEDULED,
    Event,
    Failure,
    Outcome,
)
from ..store.retention import root_fields
from ..wit.limits import DEFAULT_MAX_VALUE_BYTES, check_value
from .driver import ContinueAsNew, Driver, ReadOnlyDriver, Target
from .join_sets import JoinSet
from .replay import Replay, Request

log = structlog.get_logger("dolmen.workflow")

_JOIN_SET_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")


# How many first draws a run keeps: more than a guest runtime's seeding takes.
FIRST_DRAWS = 16


@dataclass(frozen=True, slots=True)
class Asked:
    """A request as the log has it: matched from the log, or new and buffered with its time."""

    data: dict[str, Any]
    at: int
    new: bool


@dataclass
class RunContext:
    """State of one run of one workflow execution: the host calls of `host.py` land here.

    Every call that makes a request (a child call, a submission, a delay, a
    join set, `join_next`, `schedule`) matches it against the log first, and
    so may raise `NonDeterminismError` (the log holds another request at
    that point). A new request may raise `HistoryLimitError` (the log is
    over `history`), `ValueTooLargeError` (params over `max_value_bytes`),
    and with a read-only driver `ReachedEndOfLog`. A call that waits may
    raise what the driver raises (`Unload`, `FencedError`, `StoreError`)
    and `CancelledError` once the log holds a cancellation. A join set
    handle (`rep`, 1-based) that `new_join_set` did not give raises `ConfigError`.
    Times are ms since the epoch, the log's logical time (`now`).
    """

    execution_id: str
    ffqn: str
    replay: Replay
    driver: Driver
    revision: int | None = None
    join_sets: list[JoinSet] = field(default_factory=list)
    direct_children: list[str] = field(default_factory=list)
    # Every delay requested (join sets' and sleeps'): id -> when it fires (ms).
    delays: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    pending_creates: list[NewExecution] = field(default_factory=list)
    rng: random.Random = field(init=False)
    child_ffqn: dict[str, str] = field(default_factory=dict)
    # Called after every wait: the executor refreshes the guest's CPU deadline.
    after_wait: Callable[[], None] | None = None
    # Called once, when the code asked for the last request its log holds: from
    # then on it runs past its log (the sandbox starts logging what it prints).
    caught_up: Callable[[], None] | None = None
    # The largest params of a new call (and the result), in bytes of JSON (see `wit.limits`).
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    # How large the log may grow: checked at every new request.
    history: HistoryLimit = field(default_factory=HistoryLimit)
    # This execution's tags: every execution it starts (children, scheduled) carries them too.
    tags: dict[str, str] = field(default_factory=dict)
    # Its priority class (platform/priorities.py), inherited like the tags.
    priority: str = "normal"
    # The run's first draws of entropy (sizes in bytes, -8 for a u64): on an
    # instance's first call they hold the guest runtime's own seeding, if any
    # (see `sandbox.runtime_prologue`).
    first_draws: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The seed recorded in the `created` event (or, for older logs, the one
        # derived from the id): every replay and every fork draws the same numbers.
        self.rng = random.Random(seed_number(self.replay.seed))

    # ------------------------------------------------------------ plumbing

    def _request(
        self,
        event_type: str,
        data: dict[str, Any],
        when_new: Callable[[int], dict[str, Any]] | None = None,
        *,
        calls: str | None = None,
    ) -> Asked:
        """Match a request against the log, or buffer it for writing when it is new.

        `when_new(at)` gives the fields a new request gets besides its identity,
        computed from the time `at` it is logged with (a delay's `until`, a
        scheduled execution's id). A logged request keeps the values its log
        holds: replay never computes them again. A new request that `calls` a
        function has its `params` checked against the value limit first, so
        params over it are never written (`ValueTooLargeError`).
        """
        replaying = self.replay.replaying
        logged = self.replay.request(Request(event_type, data))
        if replaying and not self.replay.replaying and self.caught_up is not None:
            self.caught_up()
        if logged is not None:
            return Asked(logged.data, logged.at, False)
        if isinstance(self.driver, ReadOnlyDriver):
            self.driver.past_end(Request(event_type, data).describe())
        if calls is not None:
            check_value(data["params"], self.max_value_bytes, f"the params of the call of {calls}")
        self._check_history()
        at = max(now_ms(), self.replay.now_ms)
        self.replay.tick(at)
        if when_new is not None:
            data = {**data, **when_new(at)}
        self.pending.append((event_type, data, at))
        return Asked(data, at, True)

    def _check_history(self) -> None:
        """Refuse a new request once the log is over its history limit (`HistoryLimitError`, final).

        Counted here, where the workflow grows its log: every response is
        the answer to one of its requests, so the log stays within about
        twice the limit even while responses arrive.
        """
        limit = self.history
        events = self.replay.length + len(self.pending) + 1
        if events <= limit.max_events and self.replay.log_bytes <= limit.max_bytes:
            return
        if events > limit.max_events:
            over = f"{events} events, over its limit of {limit.max_events}"
        else:
            over = f"{self.replay.log_bytes} bytes, over its limit of {limit.max_bytes}"
        raise HistoryLimitError(
            f"the event log of {self.execution_id} grew to {over}; a workflow that runs for long must "
            "continue as new before it gets there: call continue-as-new of dolmen:workflow/host with the params "
            "to carry on with (the execution ends, and a fresh one with an empty log takes over), or raise the "
            "component's 'history: {max_events: N, max_bytes: SIZE}' in the deployment",
            execution_id=self.execution_id,
        )

    def flush(self) -> None:
        """Write buffered requests (and the children they create) in one round trip."""
        if not self.pending:
            return
        events, creates = self.pending, self.pending_creates
        self.pending, self.pending_creates = [], []
        tail = self.driver.commit(self, events, creates)
        self.replay.appended(tail)

    def _wait(self, not_before: int | None = None) -> None:
        """Get more of the log: our buffered requests' tail first, else what others append."""
        if self.pending:
            # The commit returns the log's tail, which may already hold the awaited response.
            self.flush()
            return
        if self.replay.cancel_requested:
            raise CancelledError("the workflow was cancelled", execution_id=self.execution_id)
        new = self.driver.wait(self, not_before)
        self.replay.extend(new)
        if self.after_wait is not None:
            self.after_wait()
        if self.replay.cancel_requested:
            raise CancelledError("the workflow was cancelled", execution_id=self.execution_id)

    def _join_set(self, rep: int) -> JoinSet:
        if not 1 <= rep <= len(self.join_sets):
            raise ConfigError(f"unknown join set handle {rep}")
        return self.join_sets[rep - 1]

    def _child(self, ffqn: str, params: list[Any], join_set: str | None) -> str:
        child_id = self.replay.next_child_id()
        data: dict[str, Any] = {"join_set": join_set, "child_id": child_id, "ffqn": ffqn, "params": params}
        if self._request(CHILD_SUBMITTED, data, calls=ffqn).new:
            target = self.driver.resolve(ffqn)
            lock = self.driver.eager_lock(target) if join_set is None else None
            self._create(
                child_id,
                target,
                params,
                parent=self.execution_id,
                created_extra={"join_set": join_set} if join_set else {},
                state_extra={"js": join_set or "", "parent_ffqn": self.ffqn},
                locked_by=lock[0] if lock else None,
                lock_ttl_ms=lock[1] if lock else 0,
            )
        self.child_ffqn[child_id] = ffqn
        return child_id

    # ------------------------------------------------------ direct calls

    def call(self, ffqn: str, params: list[Any]) -> Any:
        """A blocking call of a child function (`params`: canonical JSON); returns its value (canonical JSON).

        Raises `ChildFailedError` when the child failed, `CancelledError` when
        it failed because this workflow is being cancelled (see the class
        docstring for the rest).
        """
        child_id = self._child(ffqn, params, None)
        self.direct_children.append(child_id)
        while (event := self.replay.take_response(child_id)) is None:
            self._wait()
        outcome = Outcome.from_json(event.data)
        if outcome.failure is not None and self.replay.cancel_requested:
            # Stopped because this workflow is being cancelled (see runner.attempts): not the child's failure.
            raise CancelledError("the workflow was cancelled", execution_id=self.execution_id)
        if outcome.failure is not None:
            raise ChildFailedError(
                f"child {child_id} ({ffqn}) failed: {outcome.failure.kind}: {outcome.failure.message}",
                execution_id=self.execution_id,
            )
        return outcome.value

    def sleep(self, duration_ms: int) -> None:
        """A durable sleep of `duration_ms` from the time of its request; returns once its delay fired."""
        delay_id, until = self._delay(None, duration_ms)
        while self.replay.take_response(delay_id) is None:
            self._wait(not_before=until)

    def _delay(self, join_set: str | None, duration_ms: int) -> tuple[str, int]:
        """Request a delay: its id and when it fires.

        A duration counts from the time of its own request, the `at` it is
        logged with, which may be well after the last processed event (a
        workflow replayed after a backlog): counted from that event, a sleep
        could end before it was asked for. On replay `until` is read from the log.
        """
        delay_id = self.replay.next_delay_id()
        asked = self._request(
            DELAY_REQUESTED,
            {"join_set": join_set, "delay_id": delay_id, "duration_ms": duration_ms},
            lambda at: {"until": at + duration_ms},
        )
        until = int(asked.data.get("until", asked.at + duration_ms))
        self.delays[delay_id] = until
        return delay_id, until

    def next_wake(self) -> int | None:
        """When the first delay whose response is not logged yet fires (ms), if any.

        Recorded when the workflow unloads: the repair sweep re-arms the timer
        of a workflow still blocked well past this (a failover can lose a timer).
        """
        due = [until for delay_id, until in self.delays.items() if self.replay.response_for(delay_id) is None]
        return min(due) if due else None

    # ---------------------------------------------------------- join sets

    def new_join_set(self, name: str | None, closing: str) -> int | str:
        """A join set handle (1-based), or an error message for a bad name."""
        if name is not None:
            if not _JOIN_SET_NAME.match(name) or name.startswith("g") and name[1:].isdigit():
                return (
                    f"invalid join set name '{name}': use lowercase letters, digits and dashes, "
                    "starting with a letter (names like 'g1' are reserved for generated ones)"
                )
            if any(js.name == name for js in self.join_sets):
                return f"a join set named '{name}' already exists in this execution"
            js_name = name
        else:
            js_name = self.replay.next_join_set_name()
        self._request(JOIN_SET_CREATED, {"join_set": js_name, "closing": closing})
        self.join_sets.append(JoinSet(js_name, closing))
        return len(self.join_sets)

    def join_set_name(self, rep: int) -> str:
        """The name of join set `rep` (`ConfigError` for an unknown handle)."""
        return self._join_set(rep).name

    def submit(self, rep: int, ffqn: str, params: list[Any]) -> str:
        """Submit a child of `ffqn` into join set `rep` without waiting; returns the child's execution id."""
        js = self._join_set(rep)
        child_id = self._child(ffqn, params, js.name)
        js.add_child(child_id)
        return child_id

    def submit_delay(self, rep: int, duration_ms: int) -> str:
        """Submit a delay of `duration_ms` into join set `rep`; returns the delay's id (its response carries it)."""
        js = self._join_set(rep)
        delay_id, until = self._delay(js.name, duration_ms)
        js.add_delay(delay_id, until)
        return delay_id

    def join_next(self, rep: int) -> Event | None:
        """The next response of the join set in log order; None when all are processed."""
        js = self._join_set(rep)
        self._request(JOIN_NEXT, {"join_set": js.name})
        if js.all_taken(self.replay.is_consumed):
            return None
        while (event := self.replay.take_next(js.name)) is None:
            self._wait(not_before=js.earliest_response(self.replay.is_consumed))
        return event

    def get(self, child_id: str) -> Outcome:
        """The outcome of a child whose response was already taken by `join-next`; `NotFoundError` otherwise."""
        if not self.replay.is_consumed(child_id):
            raise NotFoundError(
                f"-get({child_id}): take its response with join-next or -await-next first; "
                "results are only readable once processed, so that replay stays deterministic"
            )
        event = self.replay.response_for(child_id)
        if event is None:  # pragma: no cover - consumed implies logged
            raise NotFoundError(f"no response for {child_id}")
        return Outcome.from_json(event.data)

    def schedule(self, ffqn: str, params: list[Any], schedule: Any) -> str:
        """Start a top-level execution now or later; the workflow does not wait for it.

        It is not a child: it gets a new root id (its own tree, no parent, no
        response to this workflow), recorded in the `scheduled` event so that
        replay returns the same id; it names this workflow only as `scheduled_by`.
        `in(N)` counts from the time of this request, like a delay.
        """

        def when_new(at: int) -> dict[str, Any]:
            not_before = 0
            if isinstance(schedule, dict) and "at" in schedule:
                not_before = int(schedule["at"])
            elif isinstance(schedule, dict) and "in" in schedule:
                not_before = at + int(schedule["in"])
            return {"execution_id": ExecutionId.new().value, "not_before": not_before}

        asked = self._request(SCHEDULED, {"ffqn": ffqn, "params": params, "schedule": schedule}, when_new, calls=ffqn)
        # Logs written before scheduled executions had root ids hold the derived id as `child_id`.
        execution_id = str(asked.data.get("execution_id") or asked.data.get("child_id"))
        if asked.new:
            target = self.driver.resolve(ffqn)
            self._create(
                execution_id,
                target,
                params,
                not_before=int(asked.data["not_before"]),
                created_extra={"scheduled_by": self.execution_id},
                state_extra={"scheduled_by": self.execution_id, **root_fields(target.retention_ms)},
            )
        return execution_id

    def _create(self, execution_id: str, target: Target, params: list[Any], **fields: Any) -> None:
        """Buffer the creation of an execution that a new request starts."""
        self.pending_creates.append(
            NewExecution(
                id=execution_id,
                ffqn=target.ffqn,
                kind=target.kind,  # type: ignore[arg-type]
                digest=target.digest,
                params=params,
                revision=target.revision,
                component=target.component,
                tags=self.tags,
                priority=self.priority,
                **fields,
            )
        )

    def continue_as_new(self, params: list[Any]) -> NoReturn:
        """End the run here: the execution finishes, and a fresh one of the same function takes over.

        `params` (canonical JSON) start the new execution with an empty log,
        as a top-level execution that links back to this one (see
        `WorkflowExecutor`). Only a top-level execution can: a child's
        result belongs to its parent's log (`ContinueAsNewError`, final).
        """
        if ExecutionId(self.execution_id).parent is not None:
            raise ContinueAsNewError(
                f"{self.execution_id} is a child execution and cannot continue as new: its parent waits for its "
                "result; loop in the parent instead (call the child again with the new params), or start the "
                "long-running workflow as a top-level execution (-schedule, or an invocation)",
                execution_id=self.execution_id,
            )
        check_value(params, self.max_value_bytes, "the params of continue-as-new")
        raise ContinueAsNew(params)

    # ------------------------------------------------------- determinism

    def random_bytes(self, n: int) -> bytes:
        """`n` bytes from the run's seeded generator: the same on every replay."""
        if len(self.first_draws) < FIRST_DRAWS:
            self.first_draws.append(n)
        return self.rng.randbytes(n)

    def random_u64(self) -> int:
        """A u64 from the run's seeded generator: the same on every replay."""
        if len(self.first_draws) < FIRST_DRAWS:
            self.first_draws.append(-8)
        return self.rng.getrandbits(64)

    def redraw(self, prologue: tuple[int, ...]) -> None:
        """Draw what a fresh instance's runtime draws first (a run on a reused instance, which does not).

        The code's own draws then come from the same place in the stream as on a
        fresh instance, so a replay on one draws the same numbers.
        """
        for n in prologue:
            self.rng.getrandbits(64) if n < 0 else self.rng.randbytes(n)

    def now(self) -> int:
        """The workflow's clock in ms since the epoch: the time of the latest event processed (the same on replay)."""
        return self.replay.now_ms

    def emit(self, level: str, message: str) -> None:
        """Log the guest's `message` at `level` (debug, info, warning, error), only when running live past its log."""
        if not self.replay.replaying and not isinstance(self.driver, ReadOnlyDriver):
            getattr(log, level if level in ("debug", "info", "warning", "error") else "info")(
                message, execution_id=self.execution_id, ffqn=self.ffqn, source="workflow"
            )

    # ----------------------------------------------------------- finish

    def closing(self) -> list[str]:
        """After the code returned: children to cancel (closing=cancel); waits for the rest.

        Raises `NonDeterminismError` when logged requests remain unasked.
        """
        self.flush()
        error = self.replay.leftover_error()
        if error is not None:
            raise error
        to_cancel: list[str] = []
        for js in self.join_sets:
            waiting = [rid for rid in js.submitted if self.replay.response_for(rid) is None]
            if js.closing == "cancel":
                to_cancel += [rid for rid in waiting if not rid.rsplit(".", 1)[-1].startswith("d")]
                continue
            # A logged response stays logged: wait for each missing one in turn.
            for rid in waiting:
                while self.replay.response_for(rid) is None:
                    self._wait()
        return to_cancel

    def failure_of(self, child_id: str) -> Failure | None:
        """How child `child_id` failed, if its response is logged and is a failure."""
        event = self.replay.response_for(child_id)
        return None if event is None else Outcome.from_json(event.data).failure
