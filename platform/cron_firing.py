"""The scheduler's cron step: fire the due ticks of the active revision's schedules (decisions in cron.py).

Each scheduler looks after the schedules of its share of the shards (a
schedule's shard follows from its name), and knows in memory when each one
is next due, so a step with nothing due reads nothing from Redis. A due
schedule's state is read, `cron.decide` says which tick to fire, the
execution is created under the tick's id, then the tick is recorded as
handled. A scheduler that dies in between leaves the tick unrecorded: the
next one fires it again, which finds the execution there and creates
nothing. Two schedulers whose shares overlap for a moment do the same.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from .client import validate_submission
from .cron import Schedule, decide, schedule_tags, tick_execution_id
from .model import Revision
from .errors import DolmenError, StoreError
from .store.cron_state import CronStates
from .store.deployments import DeploymentStore, RevisionCache
from .store.executions import ExecutionStore
from .store.scripts import Scripts

log = structlog.get_logger("dolmen.cron")


class CronFiring:
    """Fires cron ticks for one scheduler process."""

    def __init__(self, scripts: Scripts, revisions: RevisionCache | None = None) -> None:
        self.scripts = scripts
        self.revisions = revisions or RevisionCache(DeploymentStore(scripts.client), ttl_s=1.0)
        self.states = CronStates(scripts.client, scripts)
        self.executions = ExecutionStore(scripts.client, scripts)
        # name -> (the schedule as last seen, when it is next due in ms; None: never again).
        self._next: dict[str, tuple[Schedule, int | None]] = {}
        self.fired = 0

    def step(self, now_ms: int, shards: list[int] | None = None) -> int:
        """Fire what is due among this scheduler's schedules; returns how many executions it created."""
        revision = self.revisions.active()
        if revision is None or not revision.schedules:
            self._next.clear()
            return 0
        mine = [s for s in revision.schedules if shards is None or self.scripts.shards.of(s.name) in shards]
        due = [s for s in mine if (known := self._next.get(s.name)) is None or known[0] != s or (known[1] is not None and known[1] <= now_ms)]
        self._next = {s.name: self._next[s.name] for s in mine if s.name in self._next}
        if not due:
            return 0
        created = 0
        states = self.states.read([s.name for s in due], now_ms)
        for schedule in due:
            decision = decide(schedule, states[schedule.name], now_ms)
            if decision.handled is not None:
                if decision.missed:
                    log.warning(
                        "cron ticks were missed (no scheduler ran them in time)", schedule=schedule.name,
                        missed=decision.missed, policy=schedule.misfire,
                    )  # fmt: skip
                for tick in decision.fire:
                    try:
                        created += self._fire(revision, schedule, tick)
                    except StoreError:
                        raise
                    except DolmenError as exc:
                        # ConflictError: a scheduler with another revision fired this tick with other params first.
                        log.error("cron tick not fired", schedule=schedule.name, tick=tick, error=str(exc))
                self.states.record(schedule.name, decision.handled, max(decision.fire, default=None))
            self._next[schedule.name] = (schedule, decision.next_due)
        self.fired += created
        return created

    def _fire(self, revision: Revision, schedule: Schedule, tick: int) -> int:
        submission = validate_submission(
            revision, schedule.function, schedule.params, execution_id=tick_execution_id(schedule.name, tick),
            tags=schedule_tags(schedule.name),
        )  # fmt: skip
        new = replace(submission.new, created_extra={"schedule": schedule.name, "tick": tick})
        created = self.executions.create(new).created
        if created:
            log.info("cron tick fired", schedule=schedule.name, tick=tick, execution_id=new.id, ffqn=schedule.function)
        return int(created)
