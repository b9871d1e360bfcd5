"""RunContext on a fake driver: delay times, scheduled executions and the randomness seed.

No store and no wasm: the context's host calls are made directly, the driver
records what would be written, and the wall clock is set by the test.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from dolmen.platform.model import HistoryLimit
from dolmen.platform.errors import ContinueAsNewError, HistoryLimitError
from dolmen.platform.ids import ExecutionId, new_seed, seed_from_id, seed_number
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.records import Event
from dolmen.platform.workflow import run_context as run_context_module
from dolmen.platform.workflow.driver import ContinueAsNew, ReadOnlyDriver, Target, Unload
from dolmen.platform.workflow.run_context import RunContext
from dolmen.platform.workflow.fork import plan_fork
from dolmen.platform.workflow.replay import Replay

EID = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
WF = "t:w/f@1.0.0.run"
DOUBLE = "testing:act/basic@1.0.0.double"
CREATED_AT = 1_000
# The wall clock during a run: far ahead of every logged event, as for a
# workflow replayed after a backlog.
WALL = 5_000_000


@dataclass
class FakeDriver:
    """Records commits; `wait` unloads (the run stops where a live one would wait)."""

    committed: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    creates: list[NewExecution] = field(default_factory=list)
    waited_until: list[int | None] = field(default_factory=list)

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        self.committed += events
        self.creates += creates
        first = ctx.replay.length
        return [Event(first + i, t, d, at, f"{first + i + 1}-0") for i, (t, d, at) in enumerate(events)]

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        self.waited_until.append(not_before)
        raise Unload("blocked")

    def resolve(self, ffqn: str) -> Target:
        return Target(ffqn, "activity", "sha256:act", 1, "act")

    def eager_lock(self, target: Target) -> tuple[str, int] | None:
        return None


class Verifying(ReadOnlyDriver):
    """A read-only driver like verification's: anything past the log stops the run."""

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        raise AssertionError("a read-only run must not commit")

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        raise Unload("end of log")

    def resolve(self, ffqn: str) -> Target:
        raise AssertionError("a read-only run must not resolve")


def log(*items: tuple[str, dict[str, Any], int], created: dict[str, Any] | None = None) -> list[Event]:
    """A log: `created` at CREATED_AT, then (type, data, at) triples."""
    events = [Event(0, "created", {"ffqn": WF, "params": [], **(created or {})}, CREATED_AT, "1-0")]
    for event_type, data, at in items:
        events.append(Event(len(events), event_type, data, at, f"{len(events) + 1}-0"))
    return events


def run_context(events: list[Event], driver: Any = None, execution_id: str = EID) -> RunContext:
    return RunContext(execution_id, WF, Replay(execution_id, events), driver if driver is not None else FakeDriver())


@pytest.fixture(autouse=True)
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """New requests are logged at WALL."""
    monkeypatch.setattr(run_context_module, "now_ms", lambda: WALL)


# -------------------------------------------------------------- delays


def test_a_sleep_counts_from_its_own_request_not_from_the_last_event() -> None:
    """Requested long after the last logged event, a sleep ends `duration` after its request."""
    child = {"join_set": None, "child_id": f"{EID}.1", "ffqn": DOUBLE, "params": [1]}
    ctx = run_context(log(("child_submitted", child, 1_010), ("response", {"child_id": f"{EID}.1", "result": 2}, 1_020)))
    assert ctx.call(DOUBLE, [1]) == 2
    assert ctx.replay.now_ms == 1_020
    driver = ctx.driver
    assert isinstance(driver, FakeDriver)
    with pytest.raises(Unload):
        ctx.sleep(3_000)
    ((event_type, data, at),) = driver.committed
    assert (event_type, at) == ("delay_requested", WALL)
    assert data == {"join_set": None, "delay_id": f"{EID}.d1", "duration_ms": 3_000, "until": WALL + 3_000}
    assert driver.waited_until == [WALL + 3_000]


def test_a_delay_in_a_join_set_counts_from_its_own_request() -> None:
    """submit-delay records and waits for `until` = the request's time + duration."""
    ctx = run_context(log())
    handle = ctx.new_join_set(None, "complete")
    assert isinstance(handle, int)
    delay_id = ctx.submit_delay(handle, 250)
    ctx.flush()
    driver = ctx.driver
    assert isinstance(driver, FakeDriver)
    assert [(t, d.get("until"), at) for t, d, at in driver.committed] == [
        ("join_set_created", None, WALL),
        ("delay_requested", WALL + 250, WALL),
    ]
    assert ctx.join_sets[0].delays == {delay_id: WALL + 250}


def test_replay_takes_until_from_the_log() -> None:
    """A logged delay keeps its logged `until`, whatever the clock and the last event say now."""
    logged = {"join_set": None, "delay_id": f"{EID}.d1", "duration_ms": 3_000, "until": 7_777}
    driver = FakeDriver()
    ctx = run_context(log(("delay_requested", logged, 1_500)), driver)
    with pytest.raises(Unload):
        ctx.sleep(3_000)
    assert driver.committed == [] and driver.waited_until == [7_777]
    js_ctx = run_context(log(("join_set_created", {"join_set": "g1", "closing": "complete"}, 1_100),
                             ("delay_requested", {**logged, "join_set": "g1"}, 1_500)))  # fmt: skip
    delay_id = js_ctx.submit_delay(js_ctx.new_join_set(None, "complete"), 3_000)  # type: ignore[arg-type]
    assert js_ctx.join_sets[0].delays == {delay_id: 7_777} and js_ctx.pending == []


def test_a_fired_sleep_replays_without_waiting() -> None:
    """A delay whose response is logged returns at once on replay; time moves to the response."""
    logged = {"join_set": None, "delay_id": f"{EID}.d1", "duration_ms": 100, "until": 1_600}
    driver = FakeDriver()
    ctx = run_context(log(("delay_requested", logged, 1_500), ("response", {"delay_id": f"{EID}.d1", "join_set": None}, 1_601)), driver)
    ctx.sleep(100)
    assert driver.committed == [] and driver.waited_until == [] and ctx.now() == 1_601


# -------------------------------------------------- scheduled executions


def test_a_scheduled_execution_is_a_new_top_level_execution() -> None:
    """schedule gets a fresh root id, recorded in the event; in(N) counts from the request; no parent."""
    driver = FakeDriver()
    ctx = run_context(log(), driver)
    scheduled_id = ctx.schedule(DOUBLE, [4], {"in": 1_000})
    ctx.flush()
    eid = ExecutionId.parse(scheduled_id)
    assert eid.parent is None and eid.root == scheduled_id and eid.root != ExecutionId(EID).root
    ((event_type, data, at),) = driver.committed
    assert (event_type, at) == ("scheduled", WALL)
    assert data == {"ffqn": DOUBLE, "params": [4], "schedule": {"in": 1_000}, "execution_id": scheduled_id, "not_before": WALL + 1_000}
    (new,) = driver.creates
    assert (new.id, new.parent, new.not_before) == (scheduled_id, None, WALL + 1_000)
    created = new.created_event()
    assert created["scheduled_by"] == EID and "parent_id" not in created
    fields = dict(zip(new.state_fields(WALL)[::2], new.state_fields(WALL)[1::2]))
    assert fields["parent"] == "" and fields["scheduled_by"] == EID and "parent_ffqn" not in fields
    # The position stays taken, so children after it are numbered as in older logs.
    assert ctx.replay.next_child_id() == f"{EID}.2"


def test_schedule_at_a_time_and_now() -> None:
    """at(T) starts at T; now starts at once (not_before 0)."""
    driver = FakeDriver()
    ctx = run_context(log(), driver)
    ctx.schedule(DOUBLE, [1], {"at": 9_000_000})
    ctx.schedule(DOUBLE, [2], "now")
    ctx.flush()
    assert [c.not_before for c in driver.creates] == [9_000_000, 0]
    assert len({c.id for c in driver.creates}) == 2


def test_replay_returns_the_logged_scheduled_id_and_creates_nothing() -> None:
    """On replay the id comes from the log (also an older log's derived `child_id`); nothing is created."""
    recorded = "E_01JD8X3K5QZ6V2N4M7P9R0S1T9"
    new_style = {"ffqn": DOUBLE, "params": [4], "schedule": {"in": 10}, "execution_id": recorded, "not_before": 1_510}
    old_style = {"child_id": f"{EID}.1", "ffqn": DOUBLE, "params": [4], "schedule": {"in": 10}}
    for data, expected in ((new_style, recorded), (old_style, f"{EID}.1")):
        ctx = run_context(log(("scheduled", data, 1_500)), Verifying())
        assert ctx.schedule(DOUBLE, [4], {"in": 10}) == expected
        assert ctx.pending == [] and ctx.pending_creates == []
        assert ctx.replay.next_child_id() == f"{EID}.2"


# ------------------------------------------------------------------ seeds


def draws(ctx: RunContext) -> list[int]:
    return [ctx.random_u64() for _ in range(3)] + [int.from_bytes(ctx.random_bytes(8), "big")]


def test_the_prng_is_seeded_from_the_recorded_seed() -> None:
    """Two executions with the same recorded seed draw the same numbers, whatever their ids."""
    seed = new_seed()
    other = "E_01JD8X3K5QZ6V2N4M7P9R0S1TA"
    first = draws(run_context(log(created={"seed": seed})))
    assert first == draws(run_context(log(created={"seed": seed}), execution_id=other))
    expected = random.Random(int(seed, 16))
    assert first[:3] == [expected.getrandbits(64) for _ in range(3)]
    assert first != draws(run_context(log(created={"seed": new_seed()})))


def test_a_log_without_a_seed_draws_as_before_seeds_were_recorded() -> None:
    """Older logs replay with sha256(id)'s first 128 bits, the seed they ran with."""
    legacy = random.Random(int.from_bytes(hashlib.sha256(EID.encode()).digest()[:16], "big"))
    assert draws(run_context(log()))[:3] == [legacy.getrandbits(64) for _ in range(3)]
    assert seed_number(seed_from_id(EID)) == int.from_bytes(hashlib.sha256(EID.encode()).digest()[:16], "big")
    assert Replay(EID, log()).seed == seed_from_id(EID)


def test_a_workflow_execution_gets_one_seed_when_it_is_made() -> None:
    """A new workflow gets a 128-bit hex seed once (every created_event agrees); activities get none."""
    wf = NewExecution(id=EID, ffqn=WF, kind="workflow", digest="sha256:x", params=[])
    seed = wf.created_event()["seed"]
    assert isinstance(seed, str) and len(seed) == 32 and int(seed, 16) >= 0
    assert wf.created_event()["seed"] == seed == wf.seed
    assert NewExecution(id=EID, ffqn=WF, kind="workflow", digest="sha256:x", params=[]).seed != seed
    assert NewExecution(id=EID, ffqn=WF, kind="workflow", digest="sha256:x", params=[], seed="ab" * 16).created_event()["seed"] == "ab" * 16
    assert "seed" not in NewExecution(id=EID, ffqn=DOUBLE, kind="activity", digest="sha256:a", params=[]).created_event()


def test_a_fork_keeps_its_sources_seed() -> None:
    """The fork's created event carries the source's recorded seed, or for an older log its id-derived one."""
    fork_id = "E_01JD8X3K5QZ6V2N4M7P9R0S1TB"
    seed = new_seed()
    plan = plan_fork(log(("join_set_created", {"join_set": "g1", "closing": "complete"}, 1_100), created={"seed": seed}),
                     EID, fork_id, 2, digest="sha256:y")  # fmt: skip
    assert plan.seed == seed and plan.events[0][1]["seed"] == seed
    forked = run_context(plan.as_events(), execution_id=fork_id)
    assert draws(forked) == draws(run_context(log(created={"seed": seed})))
    legacy = plan_fork(log(), EID, fork_id, 1, digest="sha256:y")
    assert legacy.seed == seed_from_id(EID) == legacy.events[0][1]["seed"]
    assert draws(run_context(legacy.as_events(), execution_id=fork_id)) == draws(run_context(log()))


def test_a_fork_keeps_scheduled_ids_and_is_not_scheduled_by_anyone() -> None:
    """A copied `scheduled` event keeps its execution's id; a fork of a scheduled execution drops `scheduled_by`."""
    fork_id = "E_01JD8X3K5QZ6V2N4M7P9R0S1TB"
    other = "E_01JD8X3K5QZ6V2N4M7P9R0S1T9"
    events = log(
        ("scheduled", {"ffqn": DOUBLE, "params": [1], "schedule": "now", "execution_id": other, "not_before": 0}, 1_100),
        ("scheduled", {"child_id": f"{EID}.2", "ffqn": DOUBLE, "params": [2], "schedule": "now"}, 1_200),
        created={"scheduled_by": "E_01JD8X3K5QZ6V2N4M7P9R0S1TC"},
    )
    plan = plan_fork(events, EID, fork_id, 3, digest="sha256:y")
    assert plan.events[1][1]["execution_id"] == other and plan.events[2][1]["child_id"] == f"{EID}.2"
    assert "scheduled_by" not in plan.events[0][1] and plan.children == ()
    ctx = run_context(plan.as_events(), Verifying(), execution_id=fork_id)
    assert ctx.schedule(DOUBLE, [1], "now") == other and ctx.schedule(DOUBLE, [2], "now") == f"{EID}.2"


# -------------------------------------------------------------- join sets


@dataclass
class ScriptedDriver(FakeDriver):
    """Commits like FakeDriver; each wait appends the next scripted batch of (type, data, at) to the log."""

    batches: list[list[tuple[str, dict[str, Any], int]]] = field(default_factory=list)

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        self.waited_until.append(not_before)
        if not self.batches:
            raise Unload("blocked")
        first = ctx.replay.length
        return [Event(first + i, t, d, at, f"{first + i + 1}-0") for i, (t, d, at) in enumerate(self.batches.pop(0))]


def child_response(n: int, join_set: str | None = "g1") -> tuple[str, dict[str, Any], int]:
    return ("response", {"child_id": f"{EID}.{n}", "join_set": join_set, "result": n}, WALL + n)


def delay_response(n: int) -> tuple[str, dict[str, Any], int]:
    return ("response", {"delay_id": f"{EID}.d{n}", "join_set": "g1"}, WALL + 10 * n)


def test_join_next_hands_out_responses_in_log_order_then_none() -> None:
    """Responses arriving out of submission order come out as the log has them; all taken, join-next says so."""
    driver = ScriptedDriver(batches=[[child_response(3)], [child_response(1), child_response(4)], [child_response(2)]])
    ctx = run_context(log(), driver)
    handle = ctx.new_join_set(None, "complete")
    assert isinstance(handle, int)
    for i in range(4):
        ctx.submit(handle, DOUBLE, [i])
    taken = [ctx.join_next(handle) for _ in range(4)]
    assert [e.data["child_id"] for e in taken if e is not None] == [f"{EID}.{n}" for n in (3, 1, 4, 2)]
    assert ctx.join_next(handle) is None and ctx.join_next(handle) is None
    assert driver.waited_until == [None, None, None]
    # Replaying that log hands them out in the same order without waiting.
    ctx.flush()
    again = run_context(list(ctx.replay.events), Verifying())
    handle = again.new_join_set(None, "complete")
    assert isinstance(handle, int)
    for i in range(4):
        again.submit(handle, DOUBLE, [i])
    assert [again.join_next(handle).data["child_id"] for _ in range(4)] == [e.data["child_id"] for e in taken if e]  # type: ignore[union-attr]
    assert again.join_next(handle) is None and again.join_next(handle) is None
    assert again.replay.leftover() is None


def test_a_join_set_waiting_only_for_delays_waits_for_the_earliest_pending_one() -> None:
    """While a child is pending the wait has no bound; then it is the earliest delay not yet taken."""
    driver = ScriptedDriver(batches=[[child_response(1)], [delay_response(2)], [delay_response(1)]])
    ctx = run_context(log(), driver)
    handle = ctx.new_join_set(None, "complete")
    assert isinstance(handle, int)
    ctx.submit_delay(handle, 500)  # d1
    ctx.submit(handle, DOUBLE, [1])  # .1
    ctx.submit_delay(handle, 200)  # d2
    taken = [ctx.join_next(handle) for _ in range(3)]
    assert [e.data.get("child_id") or e.data["delay_id"] for e in taken if e] == [f"{EID}.1", f"{EID}.d2", f"{EID}.d1"]
    assert driver.waited_until == [None, WALL + 200, WALL + 500]
    assert ctx.join_next(handle) is None


def test_a_fan_out_looks_each_submission_up_a_bounded_number_of_times() -> None:
    """Awaiting n children costs O(n) response lookups in all, not a scan of every submission per join-next."""
    n = 2_000
    # Responses arrive one per wait, in submission order: the old scans then cost about n²/2 lookups.
    driver = ScriptedDriver(batches=[[child_response(i)] for i in range(1, n + 1)])
    ctx = run_context(log(), driver)
    lookups = 0
    is_consumed = ctx.replay.is_consumed

    def counting(response_id: str) -> bool:
        nonlocal lookups
        lookups += 1
        return is_consumed(response_id)

    ctx.replay.is_consumed = counting  # type: ignore[method-assign]
    handle = ctx.new_join_set(None, "complete")
    assert isinstance(handle, int)
    for i in range(n):
        ctx.submit(handle, DOUBLE, [i])
    assert [ctx.join_next(handle).data["result"] for _ in range(n)] == list(range(1, n + 1))  # type: ignore[union-attr]
    assert ctx.join_next(handle) is None
    assert lookups <= 10 * n  # the scans took about 2n² here


def test_closing_waits_until_every_submission_of_a_complete_join_set_answered() -> None:
    """Returned with children unanswered, a `complete` join set waits exactly until the last response is logged."""
    driver = ScriptedDriver(batches=[[child_response(2)], [child_response(3, join_set=None)], [child_response(1)], [child_response(9)]])
    ctx = run_context(log(), driver)
    handle = ctx.new_join_set(None, "complete")
    assert isinstance(handle, int)
    for i in range(2):
        ctx.submit(handle, DOUBLE, [i])
    assert ctx.closing() == []
    assert len(driver.waited_until) == 3 and len(driver.batches) == 1


def test_only_a_top_level_execution_continues_as_new() -> None:
    """A child's result belongs to its parent's log: continue-as-new refuses it, naming what to do instead."""
    with pytest.raises(ContinueAsNew) as continued:
        run_context(log()).continue_as_new([1])
    assert continued.value.params == [1]
    with pytest.raises(ContinueAsNewError) as refused:
        run_context(log(), execution_id=f"{EID}.3").continue_as_new([1])
    assert "is a child execution" in str(refused.value) and "loop in the parent" in str(refused.value)


def test_the_history_limit_counts_events_and_bytes_at_new_requests() -> None:
    """A new request past either limit fails the run; logged requests replay freely."""
    ctx = run_context(log(("join_set_created", {"join_set": "g1", "closing": "complete"}, 2_000)))
    ctx.history = HistoryLimit(max_events=3, max_bytes=10_000)
    ctx.new_join_set(None, "complete")  # replayed from the log: not counted again
    ctx.new_join_set(None, "complete")  # the third event
    with pytest.raises(HistoryLimitError) as over:
        ctx.new_join_set(None, "complete")
    assert "4 events, over its limit of 3" in str(over.value) and "continue-as-new" in str(over.value)
    big = log(("join_set_created", {"join_set": "g1", "closing": "complete"}, 2_000))
    big = [Event(e.index, e.type, e.data, e.at, e.stream_id, size=6_000) for e in big]
    sized = run_context(big)
    sized.history = HistoryLimit(max_events=100, max_bytes=10_000)
    with pytest.raises(HistoryLimitError) as heavy:
        sized.new_join_set(None, "complete")
        sized.new_join_set(None, "complete")
    assert "12000 bytes, over its limit of 10000" in str(heavy.value)
