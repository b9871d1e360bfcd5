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
`MISFIRE_GRACE_MS` (all were down, or Redis was). Of a run of missed ticks,
only the latest is considered at all, so a long downtime never starts a
burst; `run-once` (the default) fires it late, once, `skip` drops it too and
waits for the next tick.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
        CronSim(expression, datetime(2000, 1, 1, tzinfo=timezone.utc))
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
    """What to do about a schedule now: fire one tick (or none), how many ticks were missed, where it stands next."""

    fire: int | None
    handled: int | None  # the tick to record as handled (fired or dropped), None when nothing was due
    missed: int  # ticks nobody fired in time that stay unfired (at most _COUNT_MISSED)
    next_due: int | None  # the first tick after the ones handled, None if the expression has none left

    @property
    def skipped_latest(self) -> bool:
        return self.handled is not None and self.fire is None


def decide(schedule: Schedule, state: CronState, now_ms: int) -> Decision:
    """Which tick to fire now, if any (see the module docstring for the misfire policy)."""
    first = schedule.next_tick(state.floor)
    if first is None or first > now_ms:
        return Decision(None, None, 0, first)
    latest = max(first, schedule.latest_tick(now_ms) or first)
    late = now_ms - latest > MISFIRE_GRACE_MS
    missed = _count_before(schedule, state.floor, latest)
    fire = None if late and schedule.misfire == "skip" else latest
    if fire is None:
        missed += 1
    return Decision(fire, latest, missed, schedule.next_tick(latest))


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
