"""The repair sweep's decision per indexed execution (pure: `store.repair.decide`)."""

from __future__ import annotations

from dolmen.platform.store.repair import Seen, decide

NOW = 1_000_000
STALE = 10_000


def seen(status: str, *, updated_at: int = NOW, continued: bool = False, not_before: int = 0, lock_until: int = 0) -> Seen:
    return Seen(status, "1", updated_at, not_before, lock_until, "t:p/i@1.0.0.f", continued)


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
