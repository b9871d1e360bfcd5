"""Plan a fork: a new root execution whose log starts as a copy of another's first N events.

Pure: it reads the source log and says what to write. Ids derived from the
source (`E_src.3`, `E_src.d1`) are renamed under the fork's id (`E_new.3`),
which is exactly what replay derives for the fork, so the copied requests
match when the fork's code asks for them again. A child whose response is in
the copied prefix is not created again: its result is in the log. A child
submitted in the prefix but answered after it is created anew (same function
and params) under the fork, and a delay not fired in the prefix is armed
again, so the fork can go on. Bookkeeping events that are not part of what
the code did (`attempt_failed`, `attempt_lost`, `cancel_requested`, upgrade events) are left
out; `scheduled` top-level executions are not started again: the copied
`scheduled` event keeps the id of the execution the source started (it is
not renamed, it belongs to no tree of the source's), and the fork's code gets
that id back on replay.

The fork's `created` event carries its source's randomness seed (the one
recorded, or for an older log the one its id gave), so the fork's code draws
the same random numbers (`random-u64` and everything the guest reads from WASI
`random`) and asks for the same requests as the prefix holds. Children started again are new executions with
seeds of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..ids import seed_from_id
from ..surface import CLI, Surface
from ..store.records import (
    ATTEMPT_FAILED,
    ATTEMPT_LOST,
    CANCEL_REQUESTED,
    CHILD_SUBMITTED,
    CREATED,
    DELAY_REQUESTED,
    FINISHED,
    PAUSED,
    RESPONSE,
    RESUMED,
    SCHEDULED,
    UPGRADE_REJECTED,
    UPGRADED,
    Event,
)

# Events that record what happened around the code, not what the code did.
_NOT_COPIED = frozenset(
    {ATTEMPT_FAILED, ATTEMPT_LOST, CANCEL_REQUESTED, UPGRADED, UPGRADE_REJECTED, PAUSED, RESUMED, "timed_out"}
)
_ID_FIELDS = ("child_id", "delay_id")


@dataclass(frozen=True, slots=True)
class ChildToStart:
    """A child submitted in the prefix whose response is not in it: started again under the fork."""

    id: str
    ffqn: str
    params: list[Any]
    join_set: str | None
    original_id: str


@dataclass(frozen=True, slots=True)
class DelayToArm:
    """A delay requested in the prefix that had not fired in it."""

    id: str
    join_set: str | None
    until: int


@dataclass(frozen=True, slots=True)
class ForkPlan:
    """What to write for a fork: its log, the children to start and the delays to arm."""

    source_id: str
    fork_id: str
    ffqn: str
    params: list[Any]
    events: tuple[tuple[str, dict[str, Any], int], ...]
    children: tuple[ChildToStart, ...] = ()
    delays: tuple[DelayToArm, ...] = ()
    responses: tuple[str, ...] = ()
    left_out: int = 0
    # The randomness seed recorded in the fork's `created` event: the source's.
    seed: str = ""

    def as_events(self) -> list[Event]:
        """The fork's log as `Event`s, e.g. to replay it before writing anything."""
        return [Event(i, t, d, at) for i, (t, d, at) in enumerate(self.events)]


def plan_fork(
    events: list[Event], source_id: str, fork_id: str, at: int, *, digest: str, surface: Surface = CLI
) -> ForkPlan:
    """The fork of `source_id` at event `at` (copy events 0..at-1), pinned to `digest`; errors name `at` for `surface`.

    Raises `UsageError` when the log has no `created` event first, or `at`
    is not from 1 to the index of its `finished` event (its length if none).
    """
    if not events or events[0].type != CREATED:
        raise UsageError(f"execution {source_id} has no `created` event to fork from")
    finished = next((e.index for e in events if e.type == FINISHED), len(events))
    if not 1 <= at <= finished:
        raise UsageError(
            f"{surface.field('at')} {at} is out of range for {source_id}: choose 1 to {finished} "
            f"(the number of events to copy; event {finished} is {'`finished`' if finished < len(events) else 'the end of the log'})",
            path="at",
        )
    prefix = events[:at]
    answered = {_response_id(e) for e in prefix if e.type == RESPONSE}
    rename = _Renamer(source_id, fork_id)
    copied: list[tuple[str, dict[str, Any], int]] = []
    children: list[ChildToStart] = []
    delays: list[DelayToArm] = []
    responses: list[str] = []
    left_out = 0
    ffqn = ""
    params: list[Any] = []
    seed = ""
    for event in prefix:
        if event.type in _NOT_COPIED:
            left_out += 1
            continue
        # A scheduled execution is not the source's: its id is kept (older logs
        # name it `<source>.<n>`, which is still where it lives).
        data = dict(event.data) if event.type == SCHEDULED else rename.data(event.data)
        if event.type == CREATED:
            ffqn, params = data["ffqn"], list(data["params"])
            recorded = data.get("seed")
            seed = recorded if isinstance(recorded, str) else seed_from_id(source_id)
            data["seed"] = seed
            # A fork is a root that the user started: no parent, not scheduled by a workflow.
            data.pop("parent_id", None)
            data.pop("scheduled_by", None)
            data["component_digest"] = digest
            # `copied` (filled in below) tells readers which events of the fork's log are the source's.
            data["forked_from"] = {"execution_id": source_id, "at": at, "copied": 0}
        elif event.type == CHILD_SUBMITTED and event.data["child_id"] not in answered:
            children.append(
                ChildToStart(data["child_id"], data["ffqn"], list(data["params"]), data.get("join_set"), event.data["child_id"])
            )
        elif event.type == DELAY_REQUESTED and event.data["delay_id"] not in answered:
            delays.append(DelayToArm(data["delay_id"], data.get("join_set"), int(data["until"])))
        elif event.type == RESPONSE:
            responses.append(_response_id_of(data))
        copied.append((event.type, data, event.at))
    if copied and copied[0][0] == CREATED:
        copied[0][1]["forked_from"]["copied"] = len(copied)
    return ForkPlan(
        source_id,
        fork_id,
        ffqn,
        params,
        tuple(copied),
        tuple(children),
        tuple(delays),
        tuple(responses),
        left_out,
        seed=seed,
    )


def scheduled_in(plan: ForkPlan) -> int:
    """How many `scheduled` top-level executions the copied prefix mentions (they are not started again)."""
    return sum(1 for t, _, _ in plan.events if t == SCHEDULED)


class _Renamer:
    def __init__(self, source_id: str, fork_id: str) -> None:
        self.source_id = source_id
        self.fork_id = fork_id

    def id(self, value: str) -> str:
        if value == self.source_id:
            return self.fork_id
        if value.startswith(self.source_id + "."):
            return self.fork_id + value[len(self.source_id) :]
        return value

    def data(self, data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        for name in _ID_FIELDS:
            if isinstance(out.get(name), str):
                out[name] = self.id(out[name])
        return out


def _response_id(event: Event) -> str:
    return _response_id_of(event.data)


def _response_id_of(data: dict[str, Any]) -> str:
    return data.get("child_id") or data.get("delay_id") or ""
