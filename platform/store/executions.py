"""Client-side operations on executions: create, read, list, wait, cancel (what a create writes: `creates`).

The CLI and the gateway use this; runners use `leases.py`. Every write goes
through a Lua script in `lua/`, and cross-tree effects go through the outbox.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import NotFoundError
from ..ids import ExecutionId
from . import chains, keys, outbox, retention
from .clock import now_ms
from .connection import Redis, map_redis_errors
from .creates import IDEMPOTENCY_TTL_S, Created, CreateCall, NewExecution
from .deliveries import Deliveries, carry_out
from .follow import LogFollower, read_events
from .listing import Cursor, ListFilter, Page, read_page
from .records import (
    CANCEL_REQUESTED,
    FINISHED,
    Event,
    ExecutionState,
    Failure,
    Outcome,
    Status,
)
from .scripts import Scripts, write_id

# How long `chain_end` waits for a chain's next execution to be created (seconds).
CHAIN_WAIT_S = 5.0


class ExecutionStore:
    """Executions in Redis: one state hash and one log stream each (keys in `keys.py`).

    `scripts` defaults to the Lua scripts of `client`. With `deliveries` (a
    long-running process's write-behind thread), a create's outbox effects are
    handed to it; without, they are delivered before the call returns.
    """

    def __init__(self, client: Redis, scripts: Scripts | None = None, deliveries: Deliveries | None = None) -> None:
        self.client = client
        self.scripts = scripts or Scripts(client)
        # A long-running process hands a create's effects to this write-behind thread.
        self.deliveries = deliveries

    # ----------------------------------------------------------------- create

    def create(self, new: NewExecution) -> Created:
        """Create and enqueue an execution; idempotent by id (a lost reply re-sent answers 'created' again).

        `Created.created` is False when the id existed with the same call. Raises `ConflictError` when
        the id exists with another function, other params or other tags.
        """
        call = CreateCall.of(new)
        with map_redis_errors():
            pipe = self.scripts.pipeline()
            mark = outbox.mark_for(pipe.direct, call.root, call.messages)
            if mark is not None:
                outbox.mark_dirty(pipe, mark)
            position = pipe.script("create", call.keys, call.args)
            reply = pipe.execute()[position]
        created = call.result(reply)
        carry_out(self.scripts, self.deliveries, call.root, call.messages if created.created else [], mark=mark)
        return created

    def claim_idempotency_key(self, key: str, candidate_id: str, ttl_s: int = IDEMPOTENCY_TTL_S) -> str:
        """The execution id bound to `key`: `candidate_id` if the key is new.

        The first claim binds it for `ttl_s` seconds (SET NX EX, then GET, in one round trip).
        """
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.set(keys.idempotency(key), candidate_id, nx=True, ex=ttl_s)
            pipe.get(keys.idempotency(key))
            _, bound = pipe.execute()
        return bound.decode()

    # ------------------------------------------------------------------- read

    def get(self, execution_id: str) -> ExecutionState | None:
        """The execution's state; None when it does not exist (or its retention passed).

        The id is not parsed: a malformed one reads as absent (`require` refuses it with `InvalidNameError`).
        """
        with map_redis_errors():
            raw: dict[bytes, bytes] = self.client.hgetall(keys.state(execution_id))  # type: ignore[assignment]
        return ExecutionState.from_hash(raw) if raw else None

    def require(self, execution_id: str) -> ExecutionState:
        """The execution's state; `NotFoundError` when it does not exist, `InvalidNameError` for a malformed id."""
        state = self.get(ExecutionId.parse(execution_id).value)
        if state is None:
            raise NotFoundError(
                f"execution {execution_id} does not exist, or was removed once its retention passed "
                "(`platform executions list` shows them)"
            )
        return state

    def events(self, execution_id: str, start: int = 0) -> list[Event]:
        """The log from event `start` (a 0-based index) on, in order; [] for an execution that does not exist."""
        with map_redis_errors():
            raw: list[tuple[bytes, dict[bytes, bytes]]] = self.client.xrange(keys.log(execution_id))  # type: ignore[assignment]
        return [Event.from_stream(i, sid, fields) for i, (sid, fields) in enumerate(raw) if i >= start]

    def events_many(self, execution_ids: list[str]) -> dict[str, list[Event]]:
        """The whole logs of several executions (id -> events from index 0), read in one round trip."""
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for execution_id in execution_ids:
                pipe.xrange(keys.log(execution_id))
            replies = pipe.execute()
        return {
            execution_id: [Event.from_stream(i, sid, fields) for i, (sid, fields) in enumerate(raw)]
            for execution_id, raw in zip(execution_ids, replies)
        }

    def events_after(self, execution_id: str, last_stream_id: str, first_index: int, block_ms: int) -> list[Event]:
        """Events appended after the stream entry `last_stream_id`, indexed from `first_index`; [] when none came.

        One XREAD BLOCK of `block_ms` ms (0 blocks until an entry comes, as Redis's XREAD does).
        """
        with map_redis_errors():
            reply = self.client.xread({keys.log(execution_id): last_stream_id}, block=block_ms)
        return read_events(reply, first_index)

    def follow(self, execution_id: str, *, after: int = -1, timeout_s: float) -> Iterator[Event | None]:
        """The log's events with an index above `after`, then those appended, until `finished` or `timeout_s`.

        Yields None each time a blocking read (at most `MAX_BLOCK_MS`) returns nothing, as the async
        store does (`LogFollower` decides for both). `timeout_s` is in seconds. Raises `NotFoundError`
        for an unknown execution, `InvalidNameError` for a malformed id.
        """
        follower = LogFollower(self.require(execution_id).id, after=after, deadline=time.monotonic() + timeout_s)
        with map_redis_errors():
            entries: Any = self.client.xrange(follower.key)
        yield from follower.take_log(entries)
        while (read := follower.next_read(time.monotonic())) is not None:
            with map_redis_errors():
                reply = self.client.xread(read.streams, block=read.block_ms)  # type: ignore[arg-type]
            yield from follower.take_read(reply)

    def wait_finished(self, execution_id: str, timeout_s: float) -> ExecutionState:
        """The state once finished, or as it is when `timeout_s` (seconds, the whole chain's) runs out.

        A workflow that continued as new is followed along its chain: the
        state returned is that of the last execution reached. Raises
        `NotFoundError` for an unknown execution, `InvalidNameError` for a
        malformed id.
        """
        deadline = time.monotonic() + timeout_s
        state = self._wait_one(execution_id, timeout_s)
        while (found := self._next_in_chain(state, max(0.0, deadline - time.monotonic()))) is not None:
            state = found if chains.settled(found) else self._wait_one(found.id, deadline - time.monotonic())
        return state

    def _wait_one(self, execution_id: str, timeout_s: float) -> ExecutionState:
        state = self.require(execution_id)
        if state.status == "finished" or timeout_s <= 0:
            return state
        for event in self.follow(execution_id, timeout_s=timeout_s):
            if event is not None and event.type == FINISHED:
                break
        return self.require(execution_id)

    def list(
        self,
        *,
        ffqn: str | None = None,
        status: Status | None = None,
        digest: str | None = None,
        cursor: Cursor | None = None,
        limit: int = 50,
        active_only: bool = False,
        tags: Sequence[tuple[str, str]] = (),
        roots_only: bool = False,
        outcome: str | None = None,
    ) -> tuple[list[ExecutionState], Cursor | None]:
        """Newest first, past `cursor`: up to `limit` states, and the cursor of the next page (None after the last).

        `roots_only` leaves out children (executions a workflow started), as a tree view lists them;
        `outcome` keeps finished executions that ended so (store/outcomes.py).

        With `tags` (KEY, VALUE) only executions that carry all of them, read
        from the index of the first one: the most selective tag first reads least.
        Raises `UsageError` for an unknown status or outcome, an outcome with an
        unfinished status (`ListFilter`), or a `limit` below 1.
        """
        selection = ListFilter(
            ffqn=ffqn, status=status, outcome=outcome, digest=digest, tags=tuple(tags), roots_only=roots_only,
            active_only=active_only,
        )  # fmt: skip
        found = self.page(selection, cursor, limit)
        return found.states, found.next

    def page(self, selection: ListFilter, cursor: Cursor | None = None, limit: int = 50, scan: int | None = None) -> Page:
        """The page of `selection` past `cursor`, with the cursors around it; at most `scan` states read (store/listing.py).

        `limit` executions at most (`UsageError` below 1); `scan` None reads until the page is full or the index
        ends.
        """
        return read_page(self.client, self.scripts.shards, selection, cursor, limit, scan)

    def live_states(self, batch: int = 1000) -> list[ExecutionState]:
        """Every execution that is unfinished, or continued as new (`ExecutionState.live`), from the `active` index.

        The index is read in one command, a snapshot: read in pages, a chain
        moving on from one execution to the next between two pages could be
        missed at both places. The states are then read `batch` per round trip.
        """
        with map_redis_errors():
            read = self.client.pipeline(transaction=False)
            for active in self.scripts.shards.every("active"):
                read.zrange(active, 0, -1)
            ids: list[bytes] = [raw for part in read.execute() for raw in part]
            out: list[ExecutionState] = []
            for start in range(0, len(ids), batch):
                pipe = self.client.pipeline(transaction=False)
                for raw_id in ids[start : start + batch]:
                    pipe.hgetall(keys.state(raw_id.decode()))
                out += [state for raw in pipe.execute() if raw and (state := ExecutionState.from_hash(raw)).live]
        return out

    def children(self, execution_id: str) -> list[str]:
        """Ids of the executions this workflow submitted (its `child_submitted` events), in submission order."""
        return [e.data["child_id"] for e in self.events(execution_id) if e.type == "child_submitted"]

    # ----------------------------------------------------------------- cancel

    def cancel(self, execution_id: str, reason: str = "cancelled by request") -> str:
        """Request cancellation; returns 'cancelled', 'requested', 'already' or 'finished' (see `cancel_chain`).

        Raises `NotFoundError` for an unknown execution, `InvalidNameError` for a malformed id.
        """
        return self.cancel_chain(execution_id, reason)[0]

    def cancel_chain(self, execution_id: str, reason: str = "cancelled by request") -> tuple[str, str]:
        """Request cancellation: (what happened, the id of the execution it happened to).

        What happened (lua/cancel.lua): 'cancelled' (a pending activity, external execution or stub,
        finished as cancelled at once), 'requested' (a workflow, or a running execution: its runner
        cancels it), 'already' (requested before), 'finished' (nothing to cancel).

        A workflow that continued as new is cancelled where its chain is now:
        the latest execution (followed again if it continues meanwhile). Raises
        `NotFoundError` for an unknown execution, `InvalidNameError` for a
        malformed id.
        """
        state = self.chain_end(execution_id)
        while True:
            if state.outcome is not None and state.outcome.continued_as is not None:
                return "finished", state.id  # its successor never appeared
            result = self._cancel_one(state, reason)
            if result != "finished":
                return result, state.id
            now = self.get(state.id)
            if now is None or now.outcome is None or now.outcome.continued_as is None:
                return result, state.id
            state = self.chain_end(now.id)

    def chain_end(self, execution_id: str) -> ExecutionState:
        """The execution a chain of continue-as-new has reached from `execution_id` (itself if it did not continue).

        Waits up to CHAIN_WAIT_S (seconds) per step for a successor to be created; one that does not appear
        ends the chain there. Raises `NotFoundError` for an unknown execution, `InvalidNameError` for a malformed id.
        """
        state = self.require(execution_id)
        while (successor := self._next_in_chain(state, CHAIN_WAIT_S)) is not None:
            state = successor
        return state

    def _next_in_chain(self, state: ExecutionState, timeout_s: float) -> ExecutionState | None:
        """The next execution of `state`'s chain to look at (see `chains.next_step`); None at the chain's end.

        Also None when the successor `state` names does not appear within `timeout_s`.
        """
        if chains.continued_as(state) is None:
            return None  # no read of the head: most executions are no chain
        with map_redis_errors():
            head: bytes | None = self.client.get(keys.chain_head(chains.position(state)[0]))  # type: ignore[assignment]
        step = chains.next_step(state, head)
        if step is None:
            return None
        found = self.get(step.ahead) if step.ahead is not None else None
        deadline = time.monotonic() + timeout_s
        while found is None and (found := self.get(step.successor)) is None and time.monotonic() < deadline:
            time.sleep(chains.POLL_S)
        return found

    def _cancel_one(self, state: ExecutionState, reason: str) -> str:
        eid = ExecutionId(state.id)
        parent = eid.parent
        at = now_ms()
        outcome = Outcome(failure=Failure("cancelled", reason))
        response = response_event(state.id, outcome, join_set=state.extra.get("js") or None) if parent else {}
        root = eid.root
        parent_id = parent.value if parent else state.id
        self_msg = outbox.enqueue_msg(state.ffqn, state.id, state.priority)
        wake = outbox.enqueue_msg(state.extra.get("parent_ffqn", ""), parent_id, state.priority) if parent else ""
        # Written only if cancelling finishes a root at once: its tree's retention starts.
        expire = "" if parent else retention.expire_message(root, at, state.extra)
        with map_redis_errors():
            pipe = self.scripts.pipeline()
            mark = outbox.dirty_mark(root)
            outbox.mark_dirty(pipe, mark)
            position = pipe.script(
                "cancel",
                [keys.state(state.id), keys.log(state.id), keys.outbox(root),
                 keys.state(parent_id), keys.log(parent_id), keys.done(parent_id)],
                [write_id(), at, json.dumps({"reason": reason}), self_msg, json.dumps(outcome.to_json()),
                 json.dumps(outcome.to_json()), state.id if parent else "", json.dumps(response), wake, expire],
            )  # fmt: skip
            reply = pipe.execute()[position]
            result = reply[0].decode()
            messages: list[str] = []
            if result == "requested" and int(reply[1]):
                messages.append(self_msg)
            if result == "cancelled" and int(reply[1]):
                messages.append(wake)
            if result == "cancelled" and expire:
                messages.append(expire)
            outbox.deliver(
                self.scripts,
                root,
                messages,
                also=(lambda p: p.zrem(p.shards.active(state.id), state.id)) if result == "cancelled" else None,
                mark=mark,
            )
        if result == "missing":
            raise NotFoundError(f"execution {state.id} does not exist")
        return result


def response_event(child_id: str, outcome: Outcome, *, join_set: str | None = None) -> dict[str, Any]:
    """The data of the `response` event a parent receives when its child `child_id` finishes.

    `{"child_id": ..., "join_set": ...}` (the join set when given) with the outcome's fields (`Outcome.to_json`:
    `result`, `failure` or `continued_as`).
    """
    data: dict[str, Any] = {"child_id": child_id, **outcome.to_json()}
    if join_set is not None:
        data["join_set"] = join_set
    return data


__all__ = ["CANCEL_REQUESTED", "ExecutionStore", "response_event"]

