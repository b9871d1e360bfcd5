"""Planning a fork: the copied prefix, renamed ids, and what must be started again."""

from __future__ import annotations

import pytest

from dolmen.platform.errors import UsageError
from dolmen.platform.store.records import Event
from dolmen.platform.workflow.fork import plan_fork, scheduled_in
from dolmen.platform.workflow.replay import Replay

SRC = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
NEW = "E_01JD8X3K5QZ6V2N4M7P9R0S1T9"


def log() -> list[Event]:
    raw = [
        ("created", {"ffqn": "t:w/w@1.0.0.run", "params": [3], "kind": "workflow", "component_digest": "sha256:old"}),
        ("join_set_created", {"join_set": "g1", "closing": "complete"}),
        ("child_submitted", {"join_set": "g1", "child_id": f"{SRC}.1", "ffqn": "t:a/a@1.0.0.f", "params": [1]}),
        ("child_submitted", {"join_set": "g1", "child_id": f"{SRC}.2", "ffqn": "t:a/a@1.0.0.f", "params": [2]}),
        ("delay_requested", {"join_set": None, "delay_id": f"{SRC}.d1", "duration_ms": 5, "until": 1005}),
        ("attempt_failed", {"attempt": 1}),
        ("join_next", {"join_set": "g1"}),
        ("response", {"child_id": f"{SRC}.1", "result": 2, "join_set": "g1"}),
        ("response", {"delay_id": f"{SRC}.d1", "join_set": None}),
        ("response", {"child_id": f"{SRC}.2", "result": 4, "join_set": "g1"}),
        ("finished", {"result": 6}),
    ]
    return [Event(i, t, d, 1000 + i) for i, (t, d) in enumerate(raw)]


def test_ids_are_renamed_under_the_fork_and_answered_children_are_not_restarted() -> None:
    """The copy renames child and delay ids, keeps times, and restarts nothing whose answer it holds."""
    plan = plan_fork(log(), SRC, NEW, 10, digest="sha256:new")
    types = [t for t, _, _ in plan.events]
    assert "attempt_failed" not in types and "finished" not in types and plan.left_out == 1
    created = plan.events[0][1]
    assert created["component_digest"] == "sha256:new" and created["forked_from"] == {"execution_id": SRC, "at": 10, "copied": len(plan.events)}
    children = [d["child_id"] for t, d, _ in plan.events if t == "child_submitted"]
    assert children == [f"{NEW}.1", f"{NEW}.2"]
    assert plan.responses == (f"{NEW}.1", f"{NEW}.d1", f"{NEW}.2")
    assert plan.children == () and plan.delays == ()
    assert [at for _, _, at in plan.events][:3] == [1000, 1001, 1002]
    assert (plan.ffqn, plan.params) == ("t:w/w@1.0.0.run", [3])


def test_children_and_delays_unanswered_in_the_prefix_are_started_again() -> None:
    """A prefix that ends before a response restarts that child and re-arms that delay."""
    plan = plan_fork(log(), SRC, NEW, 8, digest="sha256:old")
    assert [(c.id, c.params, c.join_set, c.original_id) for c in plan.children] == [(f"{NEW}.2", [2], "g1", f"{SRC}.2")]
    assert [(d.id, d.until) for d in plan.delays] == [(f"{NEW}.d1", 1005)]
    assert plan.responses == (f"{NEW}.1",)


def test_the_copied_prefix_replays_with_the_forks_derived_ids() -> None:
    """Replay of the fork derives the same child ids the copy holds."""
    plan = plan_fork(log(), SRC, NEW, 10, digest="sha256:new")
    replay = Replay(NEW, plan.as_events())
    assert replay.next_child_id() == f"{NEW}.1" and replay.response_for(f"{NEW}.2") is not None
    assert scheduled_in(plan) == 0


@pytest.mark.parametrize("at", [0, 11, 12])
def test_out_of_range_points_are_refused(at: int) -> None:
    """Forking at 0 or past the events before `finished` names the valid range."""
    with pytest.raises(UsageError, match="choose 1 to 10"):
        plan_fork(log(), SRC, NEW, at, digest="sha256:x")


def test_a_child_fork_becomes_a_root() -> None:
    """Forking a child execution drops its parent and renames its own children."""
    child = f"{SRC}.4"
    events = [
        Event(0, "created", {"ffqn": "f", "params": [], "parent_id": SRC}, 1),
        Event(1, "child_submitted", {"join_set": None, "child_id": f"{child}.1", "ffqn": "g", "params": []}, 2),
    ]
    plan = plan_fork(events, child, NEW, 2, digest="sha256:x")
    assert "parent_id" not in plan.events[0][1]
    assert plan.events[1][1]["child_id"] == f"{NEW}.1"
