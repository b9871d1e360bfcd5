"""What Redis remembers of each cron schedule: since when it counts, its last tick handled and last tick fired.

One hash per schedule (`keys.cron_state`), in a slot of its own, so every
command and script here touches one slot. Nothing here needs to be exact
for a tick to run once: the execution a tick starts is named by the tick
(`cron.tick_execution_id`), so a record lost or moved back only makes a
scheduler name that execution again, which creates nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..cron import CronState
from . import keys
from .connection import Redis, map_redis_errors
from .scripts import Scripts


class CronStates:
    """Read and record the state of cron schedules."""

    def __init__(self, client: Redis, scripts: Scripts | None = None) -> None:
        self.client = client
        self.scripts = scripts or Scripts(client)

    def read(self, names: Iterable[str], now_ms: int) -> dict[str, CronState]:
        """The state of each schedule; one seen for the first time counts from `now_ms`."""
        names = list(names)
        if not names:
            return {}
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hsetnx(keys.cron_state(name), "since", now_ms)
                pipe.hmget(keys.cron_state(name), ["since", "last", "fired"])
            replies = pipe.execute()
        return {name: _state(fields) for name, fields in zip(names, replies[1::2])}

    def peek(self, names: Iterable[str]) -> dict[str, CronState | None]:
        """The state of each schedule, None for one no scheduler has seen yet (writes nothing)."""
        names = list(names)
        if not names:
            return {}
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hmget(keys.cron_state(name), ["since", "last", "fired"])
            replies = pipe.execute()
        return {name: None if fields[0] is None else _state(fields) for name, fields in zip(names, replies)}

    def record(self, name: str, handled: int, fired: int | None) -> None:
        """Remember that the ticks up to `handled` were handled, and that `fired` was fired (never moved back)."""
        with map_redis_errors():
            self.scripts("cron_record", [keys.cron_state(name)], [handled, "" if fired is None else fired])

    def restart(self, names: Iterable[str], at_ms: int) -> None:
        """Schedules new in the active revision (or changed) count from `at_ms`: no tick before it fires."""
        names = list(names)
        if not names:
            return
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for name in names:
                pipe.hset(keys.cron_state(name), "since", at_ms)
            pipe.execute()


def _state(fields: list[bytes | None]) -> CronState:
    since, last, fired = (None if f is None else int(f) for f in fields)
    return CronState(since or 0, last, fired)
