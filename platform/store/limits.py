"""Platform-wide limits per function: how many hold a lease at once, and how often one starts.

A limited function (`limits:` in the deployment, `model.FunctionLimits`)
has two keys in a slot of its own (`keys.limit_running`, `keys.limit_rate`).
Before a runner or an external worker locks one of its executions, it asks
for a permit (lua/permit.lua) in one round trip for the whole read:

- `max_running`: the permit is a member `EXECUTION_ID|OWNER` of the running
  set, scored by when it ends. It ends with the lease: the lease keeper
  renews both, and the holder removes it when the attempt ends. A holder that
  dies leaves a permit that ends with its lease, and the next admission drops
  it, so a crash never keeps a slot longer than a lease. A holder that hung
  past its lease (a stale runner) finds its permit ended too: its fenced
  writes are refused anyway, and removing its own member never removes the
  permit of the one that took over (the owner is part of the member).
- `starts_per_second`: the rate key holds the earliest time of the next
  start; each admission moves it on by 1/R s. This is GCRA (the generic cell
  rate algorithm of ATM networks, as in redis-cell) with no burst: starts are
  spaced at least 1/R s apart.

The execution's own slot is another one, so a permit and a lock are two
writes: a permit whose lock is then refused is given back at once. Every
attempt of an execution counts (a retry is a start), a workflow's every
step too (it locks its execution again at every resume). What an admission
refuses goes back to the end of its queue (`Leases.requeue`), and the reader
leaves the function's queues alone until the reply's time (`Admission.until`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..model import FunctionLimits
from ..priorities import function_of
from . import keys
from .connection import map_redis_errors
from .deployments import RevisionCache
from .clock import now_ms
from .lease_values import QueueEntry, ack_entries
from .scripts import Scripts

# How long a reader leaves a full function's queues alone at most: slots free up when attempts end, not only
# when permits expire, and nobody tells readers (a poll of one script call per function per interval).
FULL_RECHECK_MS = 100


@dataclass(frozen=True, slots=True)
class PermitRequest:
    """A permit wanted for `execution_id` of `ffqn`, by `owner`, under `limits`."""

    ffqn: str
    execution_id: str
    owner: str
    limits: FunctionLimits

    @property
    def member(self) -> str:
        """Its member of the running set: `EXECUTION_ID|OWNER`."""
        return f"{self.execution_id}|{self.owner}"


@dataclass(frozen=True, slots=True)
class Admission:
    """A permit's answer: `granted`, else why not (`full` or `rate`) and until when (ms) to leave the function alone."""

    granted: bool
    reason: str = ""
    until: int = 0


@dataclass(frozen=True, slots=True)
class Permit:
    """A permit held: what to renew with the lease and to give back when the attempt ends."""

    ffqn: str
    member: str
    counted: bool  # False under a rate limit only: nothing to renew or give back


class Permits:
    """Admissions, renewals and returns of permits, in one round trip each (see the module docstring)."""

    def __init__(self, scripts: Scripts) -> None:
        self.scripts = scripts

    def admit(self, requests: Sequence[PermitRequest], now: int, ttl_ms: int) -> list[Admission]:
        """One answer per request, in order; `now` and the permits' `ttl_ms` in ms.

        Raises `StoreError` when the store cannot be reached.
        """
        if not requests:
            return []
        with map_redis_errors():
            pipe = self.scripts.pipeline()
            for r in requests:
                pipe.script(
                    "permit",
                    [keys.limit_running(r.ffqn), keys.limit_rate(r.ffqn)],
                    [r.member, now, ttl_ms, r.limits.max_running or 0, r.limits.interval_ms],
                )
            replies = pipe.execute()
        return [_admission(reply, now) for reply in replies]

    def renew(self, permits: Sequence[Permit], until_ms: int) -> None:
        """Move the end of held permits to `until_ms` (with their leases); a permit already dropped stays dropped."""
        self._each(permits, lambda pipe, p: pipe.zadd(keys.limit_running(p.ffqn), {p.member: until_ms}, xx=True))

    def release(self, permits: Sequence[Permit]) -> None:
        """Give permits back (their attempts ended, or their locks were refused)."""
        self._each(permits, lambda pipe, p: pipe.zrem(keys.limit_running(p.ffqn), p.member))

    def _each(self, permits: Sequence[Permit], command: Callable[[Any, Permit], object]) -> None:
        """`command` on one pipeline for each permit that counts (a rate limit alone holds none)."""
        counted = [p for p in permits if p.counted]
        if not counted:
            return
        with map_redis_errors():
            pipe = self.scripts.client.pipeline(transaction=False)
            for p in counted:
                command(pipe, p)
            pipe.execute()

    def running(self, ffqn: str, now: int) -> int:
        """How many permits of `ffqn` are held now (those not ended)."""
        with map_redis_errors():
            return int(self.scripts.client.zcount(keys.limit_running(ffqn), f"({now}", "+inf"))


LimitsOf = Callable[[], Mapping[str, FunctionLimits]]


def active_limits(revisions: RevisionCache) -> LimitsOf:
    """The limits of the active revision's functions, worked out once per revision (limits follow the active deployment)."""
    seen: list[tuple[int, Mapping[str, FunctionLimits]]] = [(-1, {})]

    def limits() -> Mapping[str, FunctionLimits]:
        active = revisions.active()
        if active is None:
            return {}
        number, known = seen[0]
        if number != active.number:
            known = active.limits()
            seen[0] = (active.number, known)
        return known

    return limits


class LimitGate:
    """One process's admissions of what it read: which entries may be locked, and which functions to leave alone until when.

    `limits` gives the limited functions (those of the active revision).
    Shared by the threads of a gateway's claims.
    """

    def __init__(self, scripts: Scripts, limits: LimitsOf) -> None:
        self.scripts = scripts
        self.permits = Permits(scripts)
        self.limits = limits
        self._until: dict[str, int] = {}
        self._lock = threading.Lock()

    def limited(self, ffqn: str) -> bool:
        """Whether `ffqn` has limits: its executions are run only from its queue (never inline, never eagerly)."""
        return ffqn in self.limits()

    def admit(self, entries: Sequence[QueueEntry], owner: str, ttl_ms: int) -> tuple[list[QueueEntry], dict[str, Permit]]:
        """The entries that may be locked, and the permits they hold by execution id; the others go back to their queues."""
        limits = self.limits()
        # An entry's `ffqn` names its queue: of a priority class, the function's name and the class (platform/priorities.py).
        wanted = [
            (e, PermitRequest(function_of(e.ffqn), e.execution_id, owner, limits[function_of(e.ffqn)]))
            for e in entries
            if function_of(e.ffqn) in limits
        ]
        if not wanted:
            return list(entries), {}
        now = now_ms()
        answers = self.permits.admit([request for _, request in wanted], now, ttl_ms)
        refused: list[QueueEntry] = []
        permits: dict[str, Permit] = {}
        for (entry, request), answer in zip(wanted, answers):
            if answer.granted:
                permits[entry.execution_id] = permit_of(request)
            else:
                refused.append(entry)
                with self._lock:
                    self._until[request.ffqn] = max(self._until.get(request.ffqn, 0), answer.until)
        requeue(self.scripts, refused)
        gone = {e.execution_id for e in refused}
        return [e for e in entries if e.execution_id not in gone], permits

    def held_back(self) -> frozenset[str]:
        """The functions whose queues to leave alone now: full, or not due to start yet."""
        now = now_ms()
        with self._lock:
            for ffqn in [f for f, until in self._until.items() if until <= now]:
                del self._until[ffqn]
            return frozenset(self._until)

    def wait_ms(self, longest: int) -> int:
        """How long a blocking read may wait (at most `longest`) before a held-back function is due again."""
        with self._lock:
            if not self._until:
                return longest
            due = min(self._until.values())
        return max(1, min(longest, due - now_ms()))


def requeue(scripts: Scripts, entries: Sequence[QueueEntry]) -> None:
    """Put entries an admission refused back at the end of their queues: a new entry first, then the old one removed.

    A crash between the two leaves both: the second lock of the execution is
    refused or finds nothing to do, as for any entry delivered twice.
    """
    if not entries:
        return
    with map_redis_errors():
        pipe = scripts.pipeline()
        for entry in entries:
            # effects.lua runs also over maxmemory: an entry taken out of its queue always goes back.
            pipe.script("effects", [pipe.shards.queue(entry.ffqn, entry.execution_id)], ["XADD", entry.execution_id])
        ack_entries(pipe, entries)
        pipe.execute()


def permit_of(request: PermitRequest) -> Permit:
    """The permit a granted request holds."""
    return Permit(request.ffqn, request.member, request.limits.max_running is not None)


def _admission(reply: list[bytes], now: int) -> Admission:
    status = reply[0].decode()
    if status == "ok":
        return Admission(True)
    until = int(float(reply[1]))
    if status == "full":
        # A slot frees up when an attempt ends, most often before its permit's end.
        until = min(until, now + FULL_RECHECK_MS)
    return Admission(False, status, max(until, now + 1))


__all__ = ["FULL_RECHECK_MS", "Admission", "LimitGate", "LimitsOf", "active_limits", "Permit", "PermitRequest", "Permits", "permit_of", "requeue"]
