"""Cron schedules: when a schedule's ticks fall, and what a scheduler does about the ticks that are due.

Pure: the time is an argument, nothing here reads a clock or Redis. A
schedule's ticks come from its cron expression in its time zone (cronsim
parses and iterates the expression; 5 fields, or 6 with seconds first).

Exactly one execution per tick: the execution a tick starts has an id
derived from the schedule's name and the tick's time (`tick_execution_id`),
and creating an execution is idempotent by its id, so every scheduler that
fires the same tick, at once or after a crash, names the same execution and
only the first creates it.

Misfires: a tick is missed when no scheduler fired it within
`MISFIRE_GRACE_MS` (all were down, or Redis was); every tick fired within
it is on time. Of a run of missed ticks only the latest is considered at
all, so a long downtime never starts a burst: `run-once` (the default)
fires it late, once, unless a tick on time is due anyway; `skip` drops it
too and waits for the next tick.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .ids import new_ulid

MisfirePolicy = Literal["run-once", "skip"]
MISFIRE_POLICIES: tuple[MisfirePolicy, ...] = ("run-once", "skip")
# A tick fired later than this after its time was missed (see the module docstring).
MISFIRE_GRACE_MS = 10_000
# How many missed ticks are counted for the log before it says "at least".
_COUNT_MISSED = 1000
# At most this many ticks on time are fired at once (a 6-field expression ticks at most once a second).
_MAX_ON_TIME = MISFIRE_GRACE_MS // 1000 + 2


@dataclass(frozen=True, slots=True)
class Schedule:
    """One entry of a deployment's `schedules:`: call `function` with `params` at every tick of `cron` in `timezone`."""

    name: str
    function: str
    cron: str
    timezone: str = "UTC"
    # Canonical params (the codec's JSON form, by position), checked against the function's WIT at deploy time.
    params: list[Any] = field(default_factory=list)
    misfire: MisfirePolicy = "run-once"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "function": self.function,
            "cron": self.cron,
            "timezone": self.timezone,
            "params": self.params,
            "misfire": self.misfire,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        return cls(
            data["name"], data["function"], data["cron"], data.get("timezone", "UTC"), list(data.get("params", [])),
            data.get("misfire", "run-once"),
        )  # fmt: skip

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_ticks(self, after_ms: int, count: int) -> list[int]:
        """The first `count` ticks strictly after `after_ms` (fewer if the expression has no more)."""
        ticks: list[int] = []
        for at in CronSim(self.cron, _local(after_ms, self.zone())):
            ticks.append(_ms(at))
            if len(ticks) >= count:
                break
        return ticks

    def next_tick(self, after_ms: int) -> int | None:
        """The first tick strictly after `after_ms`, None if the expression has none left."""
        ticks = self.next_ticks(after_ms, 1)
        return ticks[0] if ticks else None

    def latest_tick(self, at_ms: int) -> int | None:
        """The latest tick at or before `at_ms`, None if there is none."""
        for at in CronSim(self.cron, _local(at_ms + 1000, self.zone()), reverse=True):
            tick = _ms(at)
            if tick <= at_ms:
                return tick
        return None


def check_cron(expression: str) -> str | None:
    """Why `expression` is not a cron expression Dolmen takes (None when it is)."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        return (
            f"'{expression}' has {len(fields)} fields; write 5 (minute hour day-of-month month day-of-week, "
            "e.g. '*/5 * * * *') or 6 with seconds first (e.g. '*/10 * * * * *')"
        )
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return f"'{expression}' is not a cron expression: {str(exc).rstrip('.').lower()}; e.g. '*/5 * * * *' (every 5 minutes)"
    return None


def check_timezone(name: str) -> str | None:
    """Why `name` is not an IANA time zone (None when it is)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"'{name}' is not a known time zone; use an IANA name such as UTC, Europe/Paris or America/New_York"
    return None


def tick_execution_id(schedule: str, tick_ms: int) -> str:
    """The id of the execution that schedule `schedule` starts at `tick_ms`: the same for every scheduler."""
    digest = hashlib.sha256(f"dolmen-cron\0{schedule}\0{tick_ms}".encode()).digest()
    return f"E_{new_ulid(tick_ms, digest[:10])}"


def schedule_tags(schedule: str) -> dict[str, str]:
    """The tags of the executions a schedule starts (README "Execution tags")."""
    return {"schedule": schedule}


@dataclass(frozen=True, slots=True)
class CronState:
    """What Redis remembers of a schedule: since when it counts (ms) and its last tick handled (fired or skipped)."""

    since: int
    last: int | None = None
    last_fired: int | None = None

    @property
    def floor(self) -> int:
        """Ticks after this are still to handle."""
        return self.since if self.last is None else max(self.last, self.since)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about a schedule now: the ticks to fire, the tick handled up to, the ticks missed, the next one due."""

    fire: tuple[int, ...]
    handled: int | None  # the latest tick handled (fired or dropped), None when nothing was due
    missed: int  # ticks nobody fired in time that stay unfired (counted up to _COUNT_MISSED)
    next_due: int | None  # the first tick after the ones handled, None if the expression has none left


def decide(schedule: Schedule, state: CronState, now_ms: int) -> Decision:
    """Which ticks to fire now (see the module docstring for the misfire policy).

    Every due tick at most MISFIRE_GRACE_MS old fires, each once, so a
    scheduler that stalled for a few seconds loses no tick of a per-second
    schedule. Of the older (missed) ticks only the latest is considered:
    `run-once` fires it when no tick on time is due (that one catches up),
    `skip` never does.
    """
    floor = state.floor
    first = schedule.next_tick(floor)
    if first is None or first > now_ms:
        return Decision((), None, 0, first)
    cutoff = now_ms - MISFIRE_GRACE_MS  # ticks before this were missed
    on_time = tuple(t for t in schedule.next_ticks(max(floor, cutoff - 1), _MAX_ON_TIME) if t <= now_ms)
    latest_missed = schedule.latest_tick(cutoff - 1) if first < cutoff else None
    if latest_missed is not None and latest_missed <= floor:
        latest_missed = None
    missed = _count_before(schedule, floor, cutoff) if latest_missed is not None else 0
    fire = on_time
    if not on_time and latest_missed is not None and schedule.misfire == "run-once":
        fire, missed = (latest_missed,), missed - 1
    handled = max((*on_time, latest_missed or 0))
    return Decision(fire, handled, missed, schedule.next_tick(handled))


def _count_before(schedule: Schedule, after_ms: int, before_ms: int) -> int:
    """How many ticks fall strictly between the two times (counted up to _COUNT_MISSED)."""
    count = 0
    for tick in schedule.next_ticks(after_ms, _COUNT_MISSED + 1):
        if tick >= before_ms:
            break
        count += 1
    return min(count, _COUNT_MISSED)


def _local(ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, zone)


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def describe(schedule: Schedule, state: CronState | None, now_ms: int, count: int = 3) -> dict[str, Any]:
    """A schedule as listings show it: its definition, last tick fired and the next `count` ticks (ms)."""
    # A tick already due but not fired yet is still next; one already handled is not.
    floor = now_ms - 1 if state is None or state.last is None else max(state.last, now_ms - 1)
    return {
        **schedule.to_json(),
        "last_fired": None if state is None else state.last_fired,
        "last_execution_id": None if state is None or state.last_fired is None else tick_execution_id(schedule.name, state.last_fired),
        "next": schedule.next_ticks(floor, count),
    }
