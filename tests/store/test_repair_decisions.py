"""The repair sweep's decision per indexed execution (pure: `store.repair.decide`)."""

from __future__ import annotations

import json
from dataclasses import replace

from dolmen.platform.store.repair import Seen, decide, undelivered_delays

NOW = 1_000_000
STALE = 10_000


def seen(
    status: str, *, updated_at: int = NOW, continued: bool = False, not_before: int = 0, lock_until: int = 0, wake_at: int = 0
) -> Seen:
    return Seen(status, "1", updated_at, not_before, lock_until, "t:p/i@1.0.0.f", continued, wake_at)


def test_finished_and_vanished_executions_leave_the_index() -> None:
    assert decide(None, NOW, STALE) == "drop"
    assert decide(seen("finished"), NOW, STALE) == "drop"


def test_a_continued_execution_stays_listed_until_its_successor_must_be() -> None:
    """Its successor's index message removes it; only if that never came does the sweep, after `stale_ms`."""
    assert decide(seen("finished", continued=True), NOW, STALE) == "keep"
    assert decide(seen("finished", continued=True, updated_at=NOW - STALE - 1), NOW, STALE) == "drop"


def test_stale_pending_and_expired_running_are_requeued_blocked_kept() -> None:
    old = NOW - STALE - 1
    assert decide(seen("pending", updated_at=old), NOW, STALE) == "requeue"
    assert decide(seen("pending"), NOW, STALE) == "keep"
    assert decide(seen("running", lock_until=old), NOW, STALE) == "requeue"
    assert decide(seen("running", lock_until=NOW + 1000), NOW, STALE) == "keep"
    assert decide(seen("blocked", updated_at=old), NOW, STALE) == "keep"


def test_paused_executions_and_those_of_paused_functions_are_kept_whatever_their_state() -> None:
    """Resuming moves them on; a finished one still leaves the index."""
    old = NOW - STALE - 1
    for status, fields in (("pending", {"updated_at": old}), ("running", {"lock_until": old}), ("blocked", {"wake_at": old})):
        held = seen(status, **fields)  # type: ignore[arg-type]
        assert decide(held, NOW, STALE) != "keep"
        assert decide(replace(held, paused=True), NOW, STALE) == "keep"
        assert decide(held, NOW, STALE, frozenset({"t:p/i@1.0.0.f"})) == "keep"
    assert decide(replace(seen("finished"), paused=True), NOW, STALE) == "drop"


def test_a_workflow_blocked_well_past_its_first_due_delay_has_its_timers_armed_again() -> None:
    """A failover may have lost the timer: `stale_ms` after the delay was due, the sweep re-arms it."""
    old = NOW - STALE - 1
    assert decide(seen("blocked", updated_at=old, wake_at=old), NOW, STALE) == "rearm"
    assert decide(seen("blocked", updated_at=old, wake_at=NOW - STALE + 1), NOW, STALE) == "keep"  # may still fire
    assert decide(seen("blocked", updated_at=old, wake_at=0), NOW, STALE) == "keep"  # waits for children only
    assert decide(seen("pending", wake_at=old), NOW, STALE) == "keep"  # woken already


def entry(kind: str, data: dict[str, object], at: int = 0) -> tuple[bytes, dict[bytes, bytes]]:
    return b"1-0", {b"t": kind.encode(), b"d": json.dumps(data).encode(), b"at": str(at).encode()}


def test_the_due_delays_without_a_logged_response_are_the_ones_to_arm_again() -> None:
    log = [
        entry("created", {}),
        entry("delay_requested", {"join_set": "g1", "delay_id": "E_1.d1", "duration_ms": 5, "until": 100}),
        entry("delay_requested", {"join_set": None, "delay_id": "E_1.d2", "duration_ms": 5, "until": 200}),
        entry("delay_requested", {"join_set": "g1", "delay_id": "E_1.d3", "duration_ms": 5, "until": 900}),
        entry("response", {"delay_id": "E_1.d1", "join_set": "g1"}),
        entry("response", {"child_id": "E_1.1", "ok": 1}),
        entry("delay_requested", {"join_set": "g2", "delay_id": "E_1.d4", "duration_ms": 50}, at=100),  # no `until`: an older log
    ]
    assert undelivered_delays(log, 500) == [("E_1.d2", None, 200), ("E_1.d4", "g2", 150)]
