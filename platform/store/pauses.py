"""Pause and resume: of one execution (a flag in its state), and of a function as a whole.

An execution is paused by one script on its tree (lua/pause.lua) that sets
`paused` in its state and logs `paused`. From then on lock.lua refuses it
(`paused`), so no runner runs it, whatever brings its queue entry (a retry's
timer, a wake-up, the repair sweep, which leaves paused executions alone).
What it is doing at that moment it finishes: an activity its attempt, a
workflow its step up to its next wait, where it unloads. A response or a
delay that fires meanwhile is appended to its log as usual, but does not
queue it. Resuming (lua/resume.lua) clears the flag, logs `resumed`, and
queues it through the outbox when it has work by then. A cancellation still
goes through a paused execution.

A function is paused as a whole by an entry in `dolmen:paused-functions`:
runners read none of its queues (its entries wait there) and run none of its
executions inline, and the repair sweep leaves its executions alone. That is
one key outside every tree, which no script on a tree can read on a cluster,
so it is not written into each execution's log; resuming the function
removes the entry, and its queues are read again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import NotFoundError, NotPausableError
from ..ids import ExecutionId
from . import keys, outbox
from .cached import CachedRead
from .connection import Redis, map_redis_errors
from .clock import now_ms
from .records import ExecutionState
from .scripts import Scripts, write_id


@dataclass(frozen=True, slots=True)
class PauseResult:
    """What a pause or resume did: `changed` False when it was already so (nothing written)."""

    execution_id: str
    changed: bool
    # Pause: the status it had when paused. Resume: whether it was queued to run again.
    status: str = ""
    queued: bool = False

    def to_json(self, action: str) -> dict[str, object]:
        """The API's answer to `action` (`pause` or `resume`): `{"execution_id", ACTION: "done"|"already"[, "queued"]}`."""
        data: dict[str, object] = {"execution_id": self.execution_id, action: "done" if self.changed else "already"}
        if action == "resume" and self.changed:
            data["queued"] = self.queued
        return data


def pause(scripts: Scripts, state: ExecutionState) -> PauseResult:
    """Pause `state`'s execution; raises `NotFoundError`, or `NotPausableError` when it finished or is a stub."""
    with map_redis_errors():
        reply = scripts("pause", [keys.state(state.id), keys.log(state.id)], [write_id(), now_ms()])
    result = reply[0].decode()
    if result == "paused":
        return PauseResult(state.id, True, status=reply[1].decode())
    if result == "already":
        return PauseResult(state.id, False)
    raise _refused(result, state, "pause")


def resume(scripts: Scripts, state: ExecutionState) -> PauseResult:
    """Resume `state`'s execution, queueing it when it has work; raises as `pause` does."""
    root = ExecutionId(state.id).root
    wake = outbox.enqueue_msg(state.ffqn, state.id, state.priority)
    with map_redis_errors():
        pipe = scripts.pipeline()
        mark = outbox.dirty_mark(root)
        outbox.mark_dirty(pipe, mark)
        position = pipe.script(
            "resume", [keys.state(state.id), keys.log(state.id), keys.outbox(root)], [write_id(), now_ms(), wake]
        )
        reply = pipe.execute()[position]
        result = reply[0].decode()
        queued = result == "resumed" and bool(int(reply[1]))
        outbox.deliver(scripts, root, [wake] if queued else [], mark=mark)
    if result == "resumed":
        return PauseResult(state.id, True, queued=queued)
    if result == "already":
        return PauseResult(state.id, False)
    raise _refused(result, state, "resume")


def _refused(result: str, state: ExecutionState, action: str) -> Exception:
    if result == "missing":
        return NotFoundError(f"execution {state.id} does not exist, or was removed once its retention passed")
    if result == "finished":
        return NotPausableError(
            f"execution {state.id} ({state.ffqn}) has already finished; there is nothing to {action}",
            execution_id=state.id,
        )
    return NotPausableError(
        f"execution {state.id} ({state.ffqn}) is a stub: it never runs, so there is nothing to {action}; "
        "supply its result (platform executions complete) or cancel it",
        execution_id=state.id,
    )


# ------------------------------------------------------------- functions


def pause_function(client: Redis, ffqn: str) -> bool:
    """Pause every execution of `ffqn`, present and future; False when it was already paused."""
    with map_redis_errors():
        return bool(client.hsetnx(keys.PAUSED_FUNCTIONS, ffqn, json.dumps({"at": now_ms()})))


def resume_function(client: Redis, ffqn: str) -> bool:
    """Let runners take `ffqn`'s executions again; False when it was not paused."""
    with map_redis_errors():
        return bool(client.hdel(keys.PAUSED_FUNCTIONS, ffqn))


class PausedFunctions(CachedRead[frozenset[str]]):
    """The functions paused as a whole as last read, read again at most every `every_s` seconds (for readers of queues).

    `get()` raises `StoreError` when the store cannot be reached.
    """

    def __init__(self, client: Redis, every_s: float = 1.0) -> None:
        self.client = client
        super().__init__(lambda: frozenset(paused_functions(client)), frozenset(), every_s)


def paused_functions(client: Redis) -> dict[str, int]:
    """The functions paused as a whole, with when (ms)."""
    with map_redis_errors():
        raw: dict[bytes, bytes] = client.hgetall(keys.PAUSED_FUNCTIONS)  # type: ignore[assignment]
    return {k.decode(): int(json.loads(v).get("at", 0)) for k, v in raw.items()}


__all__ = ["PauseResult", "PausedFunctions", "pause", "pause_function", "paused_functions", "resume", "resume_function"]
