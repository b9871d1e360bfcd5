"""The leases a runner holds, kept alive while their attempts run or wait for a thread.

Every third of the lock TTL one round trip extends them all
(`Leases.extend`), and the limit permits of those still held are renewed
with them (store/limits.py). An extension refused means another runner took
the execution over: it is marked lost, so that the workflow executor stops
writing under it (`is_lost`). An execution whose cancellation was requested
meanwhile has its running attempt stopped (`RunningAttempts.cancel`), in
case the cancel message itself was lost.
"""

from __future__ import annotations

import threading

import structlog

from ..errors import StoreError
from ..store.clock import now_ms
from ..store.leases import Lease, Leases
from ..store.limits import LimitGate, Permit
from .attempts import RunningAttempts

log = structlog.get_logger("dolmen.runner")


class HeldLeases:
    """What this runner holds by execution id, and the loop (`keep`) that extends it."""

    def __init__(
        self, leases: Leases, gate: LimitGate, attempts: RunningAttempts, permits: dict[str, Permit], ttl_ms: int
    ) -> None:
        """`permits`: the runner's limit permits by execution id (shared, not copied); `ttl_ms`: the lock TTL."""
        self.leases = leases
        self.gate = gate
        self.attempts = attempts
        self.permits = permits
        self.ttl_ms = ttl_ms
        self._held: dict[str, Lease] = {}
        self._lost: set[str] = set()

    def hold(self, lease: Lease) -> None:
        """Keep `lease` alive from now on (until `let_go`)."""
        self._held[lease.id] = lease

    def let_go(self, execution_id: str) -> None:
        """Stop keeping the lease of `execution_id` alive: its attempt ended."""
        self._held.pop(execution_id, None)
        self._lost.discard(execution_id)

    def is_lost(self, execution_id: str) -> bool:
        """Whether this runner's lease of `execution_id` was refused an extension: its writes would be fenced."""
        return execution_id in self._lost

    def keep(self, stop: threading.Event) -> None:
        """Extend every held lease each third of the TTL until `stop` is set (a thread's loop; store errors are logged)."""
        while not stop.wait(self.ttl_ms / 3000):
            self.extend_once()

    def extend_once(self) -> None:
        """One round of `keep`: extend, renew the permits of what is still ours, note what was lost or cancelled."""
        held = list(self._held.values())
        try:
            results = self.leases.extend(held, self.ttl_ms)
        except StoreError as exc:
            log.error("cannot extend locks", error=str(exc))
            return
        renewed = [self.permits[i] for i, status in results.items() if status in ("ok", "cancel") and i in self.permits]
        try:
            self.gate.permits.renew(renewed, now_ms() + self.ttl_ms)
        except StoreError as exc:
            log.error("cannot renew permits", error=str(exc))
        for execution_id, status in results.items():
            if status == "cancel":
                # Also told by a message (CancelWatcher); this catches one that was lost.
                self.attempts.cancel(execution_id)
            elif status != "ok":
                self._lost.add(execution_id)
