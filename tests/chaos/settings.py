"""The chaos run's knobs: its size and seed (from the environment, see `test_chaos`), the fleet, the mix.

Every other module of the chaos test reads its numbers from here and imports nothing else of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# None when unset: each test picks its own default size (0.6 for both the single server and the cluster).
SCALE_SET = float(os.environ["DOLMEN_CHAOS_SCALE"]) if os.environ.get("DOLMEN_CHAOS_SCALE") else None
SEED = int(os.environ.get("DOLMEN_CHAOS_SEED") or "1")
# On a cluster, also kill a master ahead of its replica, losing writes on purpose (tests/chaos/losses.py).
LOSE_WRITES = os.environ.get("DOLMEN_CHAOS_LOSE_WRITES", "") not in ("", "0")

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"
P = "testing:parent/parents@1.0.0"


@dataclass(frozen=True)
class Size:
    """How big a run is: `scale` 1 is 1,000 top-level executions submitted over 60 s."""

    scale: float

    @staticmethod
    def from_env(default: float) -> Size:
        """`DOLMEN_CHAOS_SCALE` when set, else `default`."""
        return Size(SCALE_SET if SCALE_SET is not None else default)

    @property
    def executions(self) -> int:
        """Top-level executions submitted."""
        return max(50, round(1000 * self.scale))

    @property
    def submit_s(self) -> float:
        """The submissions are spread over this long."""
        return 60.0 * self.scale

    @property
    def settle_s(self) -> float:
        """Bound on the wait for everything to finish once the chaos stops."""
        return 150.0 + 30.0 * self.scale

    @property
    def timeout_s(self) -> int:
        """The test's own timeout (every wait in it is bounded well within)."""
        return int(600 * max(1.0, self.scale))


TAIL_S = 8.0  # the chaos goes on this long after the last submission
SUBMIT_GIVE_UP_S = 60.0  # one submission (or cancellation) is retried this long at most
LOCK_TTL_MS = 1500
RUNNERS = 3
PROXIED_RUNNERS = 2  # runner-0 and runner-1 (and the scheduler) reach Valkey through the proxy
MAX_ATTEMPTS = 30
SUBMITTERS = 4
CUTS_PER_S = 0.1  # per proxied connection
# What the killer thread does at each step, drawn from this deck shuffled (so a run of ~30 steps has each).
ACTIONS = ("runner", "runner", "runner", "runner", "scheduler", "scheduler", "gateway", "gateway", "cut", "stall", "partition")
VALKEY_RESTARTS_AT = (0.3, 0.7)  # fractions of the submission time (one Valkey)
# On a cluster, a disruption of its masters every this many seconds of submission time (at least three).
CLUSTER_DISRUPTION_EVERY_S = 20.0

# kind -> weight; each top-level execution gets one kind.
MIX = {
    "double": 18,  # activity
    "flaky": 15,  # activity failing 1-3 times (HTTP 500, retried `err`), then succeeding
    "slow": 8,  # activity busy for 50-500 ms
    "serial": 13,  # workflow: n direct activity calls in a row
    "fan-out": 11,  # workflow: n activities in one join set
    "sleepy": 8,  # workflow: one durable sleep (in memory or unloaded)
    "schedule": 5,  # workflow: schedules double(x) for later, then sleeps
    "later": 4,  # workflow (unload): schedules serial(n) for later
    "nested": 5,  # workflow calling serial(n) directly and fan-out(n) in a join set
    "race": 4,  # a delay and an activity racing in a join set closed with cancel
    "serial-cancel": 4,  # serial(n) cancelled at a random moment: cancelled, or done first
    "cancellable": 3,  # two slow children and a long sleep, cancelled
    "hold": 2,  # a child workflow that waits long, the parent cancelled
}
CANCELLED_KINDS = {"serial-cancel", "cancellable", "hold"}
