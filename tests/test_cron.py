"""Cron schedules (platform/cron.py): ticks in a time zone, the tick's execution id, and the misfire decisions."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dolmen.platform.cron import (
    MISFIRE_GRACE_MS, CronState, Schedule, check_cron, check_timezone, decide, tick_execution_id,
)  # fmt: skip
from dolmen.platform.ids import ExecutionId


def ms(text: str, zone: str = "UTC") -> int:
    return round(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


EVERY_MINUTE = Schedule("m", "a:b/c@1.0.0.f", "* * * * *")
EVERY_SECOND = Schedule("s", "a:b/c@1.0.0.f", "* * * * * *")


def test_ticks_follow_the_expression_in_its_time_zone() -> None:
    """'0 9 * * *' in Europe/Paris falls at 08:00 UTC in winter and 07:00 UTC in summer."""
    paris = Schedule("p", "a:b/c@1.0.0.f", "0 9 * * *", "Europe/Paris")
    assert paris.next_ticks(ms("2026-01-10T12:00:00"), 2) == [ms("2026-01-11T08:00:00"), ms("2026-01-12T08:00:00")]
    assert paris.next_tick(ms("2026-07-10T12:00:00")) == ms("2026-07-11T07:00:00")


def test_a_tick_in_a_skipped_dst_hour_still_fires_once() -> None:
    """Europe/Paris skips 02:00-03:00 on 2026-03-29: a 02:30 job runs once that day (at 03:00 local, as Debian cron)."""
    job = Schedule("d", "a:b/c@1.0.0.f", "30 2 * * *", "Europe/Paris")
    ticks = job.next_ticks(ms("2026-03-28T12:00:00"), 2)
    assert [datetime.fromtimestamp(t / 1000, ZoneInfo("Europe/Paris")).day for t in ticks] == [29, 30]


def test_next_tick_is_strictly_after_and_latest_tick_at_or_before() -> None:
    """A tick at exactly the given time is the latest one, not the next one."""
    at = ms("2026-01-01T00:05:00")
    assert EVERY_MINUTE.next_tick(at) == ms("2026-01-01T00:06:00")
    assert EVERY_MINUTE.latest_tick(at) == at
    assert EVERY_MINUTE.latest_tick(at + 999) == at
    assert EVERY_SECOND.next_tick(at + 500) == at + 1000


def test_the_execution_id_of_a_tick_is_the_same_everywhere_and_differs_per_tick_and_schedule() -> None:
    """Every scheduler names the same root execution for (schedule, tick); its ULID carries the tick's time."""
    tick = ms("2026-01-01T00:05:00")
    first = tick_execution_id("nightly", tick)
    assert first == tick_execution_id("nightly", tick)
    assert first != tick_execution_id("nightly", tick + 60_000) and first != tick_execution_id("other", tick)
    parsed = ExecutionId.parse(first)
    assert parsed.parent is None and parsed.created_ms == tick


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "has 4 fields; write 5"),
        ("* * * * * * *", "has 7 fields"),
        ("61 * * * *", "bad minute"),
        ("* 25 * * *", "bad hour"),
        ("*/0 * * * *", "is not a cron expression"),
        ("* * * * mon-xyz", "is not a cron expression"),
    ],
)
def test_a_bad_expression_is_refused_naming_what_is_wrong(expression: str, message: str) -> None:
    """Field count and each field's range are checked."""
    assert message in (check_cron(expression) or "")


def test_good_expressions_and_time_zones_pass() -> None:
    """5 fields, 6 with seconds, names of days; IANA zones."""
    for expression in ("*/5 * * * *", "0 9 * * mon-fri", "*/10 * * * * *", "0 0 1 1 *"):
        assert check_cron(expression) is None
    assert check_timezone("Europe/Paris") is None and check_timezone("UTC") is None
    assert "not a known time zone" in (check_timezone("Mars/Olympus") or "")
    assert "not a known time zone" in (check_timezone("../etc/passwd") or "")


def test_nothing_is_due_before_the_first_tick_after_the_floor() -> None:
    """A schedule counts from `since`: the tick before it never fires."""
    since = ms("2026-01-01T00:05:30")
    decision = decide(EVERY_MINUTE, CronState(since), since + 20_000)
    assert decision.fire == () and decision.handled is None and decision.next_due == ms("2026-01-01T00:06:00")


def test_a_due_tick_fires_on_time_and_the_next_one_is_known() -> None:
    """At 00:06:00.2 the 00:06 tick fires, nothing was missed, and 00:07 is next."""
    tick = ms("2026-01-01T00:06:00")
    decision = decide(EVERY_MINUTE, CronState(tick - 30_000), tick + 200)
    assert (decision.fire, decision.handled, decision.missed, decision.next_due) == ((tick,), tick, 0, tick + 60_000)


def test_a_handled_tick_does_not_fire_again() -> None:
    """`last` at the tick: nothing is due until the next one."""
    tick = ms("2026-01-01T00:06:00")
    assert decide(EVERY_MINUTE, CronState(tick - 30_000, last=tick), tick + 500).fire == ()


@pytest.mark.parametrize("policy", ["run-once", "skip"])
def test_after_a_downtime_only_the_latest_missed_tick_is_considered(policy: str) -> None:
    """Down from 00:06:30 to 00:10:59.5: 00:07..00:09 are dropped; 00:10 is 59.5 s late, so run-once fires it and skip does not."""
    schedule = Schedule("m", "a:b/c@1.0.0.f", "* * * * *", misfire=policy)  # type: ignore[arg-type]
    last = ms("2026-01-01T00:06:00")
    now = ms("2026-01-01T00:10:59.500")
    decision = decide(schedule, CronState(last - 1000, last=last), now)
    assert decision.handled == ms("2026-01-01T00:10:00")
    assert decision.next_due == ms("2026-01-01T00:11:00")
    if policy == "run-once":
        assert decision.fire == (ms("2026-01-01T00:10:00"),) and decision.missed == 3
    else:
        assert decision.fire == () and decision.missed == 4


def test_skip_still_fires_a_tick_within_the_grace() -> None:
    """A tick fired up to MISFIRE_GRACE_MS late is on time, also with `skip`; earlier missed ones are dropped."""
    schedule = Schedule("s", "a:b/c@1.0.0.f", "*/30 * * * * *", misfire="skip")
    last = ms("2026-01-01T00:00:00")
    now = ms("2026-01-01T00:01:00") + MISFIRE_GRACE_MS - 1
    decision = decide(schedule, CronState(last, last=last), now)
    assert decision.fire == (ms("2026-01-01T00:01:00"),) and decision.missed == 1


def test_a_long_downtime_fires_only_the_ticks_still_on_time() -> None:
    """A day down with a per-second schedule: the ticks of the last 10 s fire, the earlier ones are counted (up to 1000)."""
    last = ms("2026-01-01T00:00:00")
    now = last + 86_400_000
    decision = decide(EVERY_SECOND, CronState(last, last=last), now)
    assert decision.fire == tuple(range(now - MISFIRE_GRACE_MS, now + 1, 1000)) and decision.missed == 1000
    assert decision.handled == now and decision.next_due == now + 1000


def test_a_scheduler_that_stalled_for_seconds_fires_every_tick_it_let_pass() -> None:
    """Ticks within the grace are on time: a 2.5 s stall of a per-second schedule loses none."""
    last = ms("2026-01-01T00:00:00")
    decision = decide(EVERY_SECOND, CronState(last, last=last), last + 2500)
    assert decision.fire == (last + 1000, last + 2000) and decision.missed == 0


def test_run_once_does_not_add_a_late_tick_when_one_on_time_is_due() -> None:
    """Down over 00:07..00:10 and back at 00:11:00.5: 00:11 fires on time and is the catch-up; 00:07..00:10 are dropped."""
    last = ms("2026-01-01T00:06:00")
    decision = decide(EVERY_MINUTE, CronState(last, last=last), ms("2026-01-01T00:11:00.500"))
    assert decision.fire == (ms("2026-01-01T00:11:00"),) and decision.missed == 4


def test_the_state_floor_is_the_later_of_since_and_last() -> None:
    """A restarted schedule (since moved forward) ignores a last tick before it."""
    assert CronState(since=100, last=50).floor == 100
    assert CronState(since=100, last=150).floor == 150
    assert CronState(since=100).floor == 100


def test_a_schedule_round_trips_through_json() -> None:
    """What a revision stores reads back the same."""
    schedule = Schedule("n", "a:b/c@1.0.0.f", "0 2 * * *", "Europe/Paris", [1, "x"], "skip")
    assert Schedule.from_json(schedule.to_json()) == schedule
