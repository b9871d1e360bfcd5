"""What the run left in Valkey (`read_everything`, after `wait_all_finished`) and the checks on it
(`verify`): every execution ended once, nothing was done twice, and every result is the expected one."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import redis

from dolmen.platform.store import keys
from dolmen.platform.store.connection import Redis
from dolmen.platform.store.records import Event, ExecutionState, Outcome
from tests.chaos.losses import LostWrites
from tests.support import indexes
from tests.chaos.settings import CANCELLED_KINDS, MAX_ATTEMPTS
from tests.chaos.traffic import Job


# --------------------------------------------------------------- reading


def all_ids(r: Redis) -> list[str]:
    """Every execution in Valkey, found by its state hash (children and scheduled ones included)."""
    found = set()
    for key in r.scan_iter(match="dolmen:{*}:*:state", count=5000):
        found.add(key.decode().split(":")[2])
    return sorted(found)


def statuses(r: Redis, ids: list[str]) -> dict[str, str]:
    pipe = r.pipeline(transaction=False)
    for execution_id in ids:
        pipe.hget(keys.state(execution_id), "status")
    return {i: (s or b"").decode() for i, s in zip(ids, pipe.execute())}


def wait_all_finished(r: Redis, roots: list[str], timeout: float) -> list[str]:
    """Until every execution in Valkey and every accepted root is finished; returns those that are not."""
    deadline = time.monotonic() + timeout
    unfinished: list[str] = []
    while True:
        try:
            ids = sorted(set(all_ids(r)) | set(roots))
            unfinished = [i for i, s in statuses(r, ids).items() if s != "finished"]
        except redis.RedisError as exc:
            unfinished = [f"(read failed: {exc!r})"]
        if not unfinished or time.monotonic() > deadline:
            return unfinished
        time.sleep(1.0)


def whereabouts(r: Redis, ids: list[str]) -> dict[str, str]:
    """For executions that did not finish: whether what recovers them still names them (the active
    index the repair sweep walks, the timers, their tree's outbox)."""
    ids = [i for i in ids if i.startswith("E_")][:50]
    if not ids:
        return {}
    try:
        timers = [json.loads(member).get("id") for member in indexes.zmembers(r, "timers")]
        found = {}
        for execution_id in ids:
            active = indexes.zscore(r, "active", execution_id) is not None
            outbox = r.llen(keys.outbox(keys.root_of(execution_id)))
            found[execution_id] = (
                f"in the active index: {'yes' if active else 'no'}; timers for it: {timers.count(execution_id)};"
                f" messages in its tree's outbox: {outbox}"
            )
        return found
    except (redis.RedisError, ValueError) as exc:
        return {"-": f"not read: {exc!r}"}


@dataclass
class Snapshot:
    states: dict[str, ExecutionState]
    logs: dict[str, list[Event]]
    idempotency: dict[str, str | None]


def read_everything(r: Redis, jobs: list[Job]) -> Snapshot:
    ids = sorted(set(all_ids(r)) | {j.execution_id for j in jobs if j.execution_id})
    states: dict[str, ExecutionState] = {}
    logs: dict[str, list[Event]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        pipe = r.pipeline(transaction=False)
        for execution_id in chunk:
            pipe.hgetall(keys.state(execution_id))
            pipe.xrange(keys.log(execution_id))
        replies = pipe.execute()
        for n, execution_id in enumerate(chunk):
            raw_state, raw_log = replies[2 * n], replies[2 * n + 1]
            if raw_state:
                states[execution_id] = ExecutionState.from_hash(raw_state)
            logs[execution_id] = [Event.from_stream(i, sid, fields) for i, (sid, fields) in enumerate(raw_log)]
    http_keys = [j.key for j in jobs if j.via == "http"]
    pipe = r.pipeline(transaction=False)
    for key in http_keys:
        pipe.get(keys.idempotency(key))
    idempotency = {k: (v.decode() if v else None) for k, v in zip(http_keys, pipe.execute())}
    return Snapshot(states, logs, idempotency)


# ---------------------------------------------------------------- checks


@dataclass
class Problem:
    check: str
    execution_id: str
    detail: str = ""
    # Explained by a write the test lost on purpose (losses.py), in this tree or idempotency key; not a failure.
    excused: bool = False


def _submitted_id(event: Event) -> str:
    """The execution a `child_submitted` or `scheduled` event created (older logs: `child_id` for both)."""
    return str(event.data.get("execution_id") or event.data.get("child_id"))


def _created(logs: dict[str, list[Event]], execution_id: str) -> dict[str, Any]:
    events = logs.get(execution_id) or []
    return events[0].data if events and events[0].type == "created" else {}


def parent_of(state: ExecutionState, logs: dict[str, list[Event]]) -> str | None:
    """The workflow that submitted this execution as its child, if any."""
    return state.parent or _created(logs, state.id).get("parent_id") or None


def scheduler_of(state: ExecutionState, logs: dict[str, list[Event]]) -> str | None:
    """The workflow that scheduled this execution, if any."""
    return state.extra.get("scheduled_by") or _created(logs, state.id).get("scheduled_by") or None


def _outcome_of(data: dict[str, Any]) -> Outcome:
    return Outcome.from_json(data)


def _short(outcome: Outcome | None) -> str:
    if outcome is None:
        return "none"
    if outcome.failure is not None:
        return f"{outcome.failure.kind}: {outcome.failure.message[:120]}"
    return json.dumps(outcome.value)[:120]


def _expected_value(job: Job) -> Any:
    p = job.params
    if job.kind == "double":
        return 2 * p[0]
    if job.kind == "flaky":
        return {"ok": f"ok j{job.index}"}
    if job.kind == "slow":
        return p[1]
    if job.kind in ("serial", "serial-cancel", "fan-out"):
        return p[0] * (p[0] + 1)
    if job.kind == "nested":
        return [p[0] * (p[0] + 1)] * 2
    return None


def verify(jobs: list[Job], snap: Snapshot, lost: LostWrites | None = None) -> list[Problem]:
    """Every problem found; those a write lost on purpose explains are marked `excused`.

    What a lost write may excuse, and only in the tree (or idempotency key) it went to: an accepted
    execution that is missing (its creation lost), an idempotency key bound to nothing or to another
    execution, and a second top-level execution for the same submission (the key lost, the
    submission retried); a cancellation refused as not found (the creation lost); a cancelled
    execution that finished normally (the cancellation lost); a
    scheduled execution missing (its creation lost) or not named by its scheduler (the `scheduled`
    event lost, and the workflow, run again, scheduled another). Nothing else: every execution that
    exists must still finish once, with a log that holds together and its expected result.
    """
    problems: list[Problem] = []
    lost = lost or LostWrites()

    def bad(check: str, execution_id: str, detail: str = "", *, lost_write: bool = False) -> None:
        problems.append(Problem(check, execution_id, detail, excused=lost_write))

    states, logs = snap.states, snap.logs
    accepted = {j.execution_id: j for j in jobs if j.execution_id}
    lost_key_jobs = {(j.ffqn, json.dumps(j.params)) for j in jobs if j.key in lost.idempotency_keys}

    # Submissions: each accepted once, under its key; nothing else at the top level.
    for job in jobs:
        if job.execution_id is None:
            bad("submission never accepted", f"job-{job.index}", f"{job.kind} via {job.via}: {job.error}")
        elif job.via == "http" and snap.idempotency.get(job.key) != job.execution_id:
            bad("idempotency key bound elsewhere", job.execution_id, f"key {job.key} -> {snap.idempotency.get(job.key)}",
                lost_write=job.key in lost.idempotency_keys or lost.touches(job.execution_id))
        if job.cancel_result is not None and job.cancel_result not in ("cancelled", "requested", "already", "finished"):
            gone = job.execution_id is not None and job.execution_id not in states and lost.touches(job.execution_id)
            bad("cancellation failed", job.execution_id or f"job-{job.index}", job.cancel_result, lost_write=gone)
    for execution_id, state in states.items():
        if not parent_of(state, logs) and not scheduler_of(state, logs) and execution_id not in accepted:
            bad("top-level execution nobody was answered with (submitted twice?)", execution_id, f"{state.ffqn} {state.params}",
                lost_write=(state.ffqn, json.dumps(state.params)) in lost_key_jobs)
    for execution_id in accepted:
        if execution_id not in states:
            bad("accepted execution missing", execution_id, lost_write=lost.touches(execution_id))

    # Trees whose root was (maybe) cancelled: their executions may end cancelled.
    cancel_roots = {j.execution_id for j in jobs if j.execution_id and j.kind in CANCELLED_KINDS}

    for execution_id, state in states.items():
        events = logs.get(execution_id, [])
        types = [e.type for e in events]
        if state.status != "finished":
            bad("not finished", execution_id, f"status {state.status}, owner {state.owner}, attempt {state.attempt}")
        if types.count("finished") != 1:
            bad("not exactly one finished event", execution_id, f"{types.count('finished')} finished events")
        if types.count("created") != 1 or not types or types[0] != "created":
            bad("created is not the one first event", execution_id)
        if "finished" in types:
            first = types.index("finished")
            if types[first + 1 :]:
                bad("events after finished", execution_id, ", ".join(types[first + 1 :]))
            logged = _outcome_of(events[first].data)
            if state.outcome is not None and logged != state.outcome:
                bad("state outcome differs from the log", execution_id, f"state {_short(state.outcome)} / log {_short(logged)}")

        # Requests: no id twice, no identical request twice, no join set awaited beyond its work.
        ids: Counter[str] = Counter()
        identities: Counter[str] = Counter()
        given: Counter[str] = Counter()
        awaited: Counter[str] = Counter()
        responses: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            d = e.data
            if e.type in ("child_submitted", "scheduled"):
                ids[_submitted_id(e)] += 1
                identities[json.dumps([e.type, d.get("join_set"), d["ffqn"], d["params"], d.get("schedule")])] += 1
                if d.get("join_set"):
                    given[d["join_set"]] += 1
            elif e.type == "delay_requested":
                ids[d["delay_id"]] += 1
                identities[json.dumps([e.type, d.get("join_set"), d["duration_ms"]])] += 1
                if d.get("join_set"):
                    given[d["join_set"]] += 1
            elif e.type == "join_set_created":
                identities[json.dumps([e.type, d["join_set"]])] += 1
            elif e.type == "join_next":
                awaited[d["join_set"]] += 1
            elif e.type == "response":
                responses[d.get("child_id") or d.get("delay_id") or "?"].append(e)
        for rid, n in ids.items():
            if n > 1:
                bad("request id logged twice", execution_id, f"{rid} x{n}")
        for identity, n in identities.items():
            if n > 1:
                bad("identical request logged twice", execution_id, f"{identity} x{n}")
        for js, n in awaited.items():
            if n > given[js]:
                bad("join set awaited more than it was given", execution_id, f"{js}: {n} join_next for {given[js]} submissions")
        for rid, got in responses.items():
            if len(got) > 1:
                bad("response delivered twice", execution_id, f"{rid} x{len(got)}")

        # Children: each exists, answered once when the parent finished normally, with the child's outcome.
        parent_ok = state.outcome is not None and state.outcome.failure is None
        cancel_sets = {e.data["join_set"] for e in events if e.type == "join_set_created" and e.data.get("closing") == "cancel"}
        for e in events:
            if e.type not in ("child_submitted", "delay_requested", "scheduled"):
                continue
            rid = e.data["delay_id"] if e.type == "delay_requested" else _submitted_id(e)
            if e.type != "delay_requested" and rid not in states:
                bad(f"{e.type} execution missing", execution_id, rid, lost_write=e.type == "scheduled" and lost.touches(rid))
                continue
            if e.type == "scheduled":
                continue
            got = responses.get(rid, [])
            if parent_ok and e.data.get("join_set") not in cancel_sets and len(got) != 1:
                bad("child or delay without exactly one response", execution_id, f"{rid}: {len(got)} responses")
            if e.type == "child_submitted" and got:
                child_outcome = states[rid].outcome
                if child_outcome is not None and _outcome_of(got[0].data) != child_outcome:
                    bad("response differs from the child's outcome", execution_id,
                        f"{rid}: response {_short(_outcome_of(got[0].data))} / child {_short(child_outcome)}")  # fmt: skip

        # A child (or scheduled execution): submitted by exactly one request of its parent.
        parent = parent_of(state, logs) or scheduler_of(state, logs)
        if parent:
            refs = [
                e for e in logs.get(parent, [])
                if e.type in ("child_submitted", "scheduled") and _submitted_id(e) == execution_id
            ]  # fmt: skip
            if len(refs) != 1:
                orphan = not refs and scheduler_of(state, logs) is not None and lost.touches(parent)
                bad("child not submitted by exactly one request of its parent", execution_id, f"{len(refs)} requests in {parent}",
                    lost_write=orphan)

        # Failures: only cancellations in trees that were cancelled (or losers of a race).
        if state.outcome is not None and state.outcome.failure is not None:
            kind = state.outcome.failure.kind
            root = execution_id.split(".", 1)[0]
            in_race = root in accepted and accepted[root].kind == "race"
            if not (kind == "cancelled" and (root in cancel_roots or in_race)):
                bad("unexpected failure", execution_id, _short(state.outcome))

        if state.kind == "activity" and types.count("attempt_failed") > MAX_ATTEMPTS:
            bad("more failed attempts than allowed", execution_id, f"{types.count('attempt_failed')}")

    # Top-level results.
    for execution_id, job in accepted.items():
        state = states.get(execution_id)
        if state is None or state.outcome is None:
            continue
        outcome = state.outcome
        cancelled = outcome.failure is not None and outcome.failure.kind == "cancelled"
        expected = _expected_value(job)
        if job.kind in ("cancellable", "hold"):
            right = cancelled
            want = "cancelled"
        elif job.kind == "serial-cancel":
            right = cancelled or (outcome.failure is None and outcome.value == expected)
            want = f"cancelled or {expected}"
        elif job.kind == "race":
            right = outcome.failure is None and outcome.value in ("delay", "work")
            want = "delay or work"
        elif job.kind in ("schedule", "later"):
            # Its result is the id of the execution it scheduled, as its `scheduled` event records it.
            logged = [_submitted_id(e) for e in logs.get(execution_id, []) if e.type == "scheduled"]
            right = outcome.failure is None and logged == [outcome.value]
            want = f"the id its scheduled event holds ({logged})"
        elif job.kind == "sleepy":
            right = outcome.failure is None and isinstance(outcome.value, int) and outcome.value >= job.params[0]
            want = f">= {job.params[0]}"
        else:
            right = outcome.failure is None and outcome.value == expected
            want = json.dumps(expected)
        if not right:
            uncancelled = job.kind in CANCELLED_KINDS and outcome.failure is None and lost.touches(execution_id)
            bad(f"wrong result ({job.kind})", execution_id, f"expected {want}, got {_short(outcome)}", lost_write=uncancelled)
        if job.kind in ("schedule", "later") and right:
            scheduled = states.get(str(outcome.value))
            n = job.params[0]
            want_scheduled = 2 * n if job.kind == "schedule" else n * (n + 1)
            if scheduled is None or scheduled.outcome is None or scheduled.outcome.value != want_scheduled:
                got = _short(None if scheduled is None else scheduled.outcome)
                bad(f"wrong scheduled result ({job.kind})", execution_id, f"{outcome.value}: expected {want_scheduled}, got {got}",
                    lost_write=lost.touches(str(outcome.value)))  # fmt: skip
    return problems
