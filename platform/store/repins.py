"""Re-pinning running workflows to a new digest, and the queue of unfinished upgrades.

`repin` goes through `lua/upgrade.lua`, which writes the `upgraded` or
`upgrade_rejected` event only if the execution is not locked by a runner,
is still on the digest the caller verified against, and its log still has
the length that was verified; otherwise it says why (`busy`, `moved`,
`grew`, `finished`) and writes nothing.

Upgrades that could not finish at deploy time (a runner held an execution)
are queued as requests in one list; the scheduler works through them.
"""

from __future__ import annotations

import json
from typing import Any


from . import keys
from .connection import Redis, map_redis_errors
from .clock import now_ms
from .scripts import Scripts, write_id


class UpgradeStore:
    """Checked writes of upgrade events, and pending upgrade requests."""

    def __init__(self, client: Redis, scripts: Scripts | None = None) -> None:
        self.client = client
        self.scripts = scripts or Scripts(client)

    def repin(
        self,
        execution_id: str,
        *,
        from_digest: str,
        to_digest: str,
        seen_length: int,
        event_type: str,
        data: dict[str, Any],
        revision: int | None,
        component: str,
    ) -> str:
        """Append `upgraded` (and re-pin) or `upgrade_rejected`; returns 'ok' or why not.

        Why not: `busy` (locked by a runner), `moved` (no longer on
        `from_digest`), `grew` (its log no longer has `seen_length` events),
        `finished`, `missing` (see the module docstring).
        """
        with map_redis_errors():
            reply = self.scripts(
                "upgrade",
                [keys.state(execution_id), keys.log(execution_id)],
                [write_id(), from_digest, to_digest, seen_length, now_ms(), event_type, json.dumps(data),
                 "" if revision is None else revision, component],
            )
        return reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])

    # --------------------------------------------------------------- requests

    def add_request(self, request: dict[str, Any]) -> None:
        """Queue an upgrade for the scheduler to finish (`request`: a JSON object, see `PendingUpgrades`)."""
        with map_redis_errors():
            self.client.rpush(keys.UPGRADES, json.dumps(request, sort_keys=True))

    def pending(self) -> int:
        """How many upgrade requests are queued."""
        with map_redis_errors():
            return int(self.client.llen(keys.UPGRADES))  # type: ignore[arg-type]

    def rotate(self) -> str | None:
        """The next request, moved to the end of the queue (so a crashed worker loses nothing)."""
        with map_redis_errors():
            raw = self.client.lmove(keys.UPGRADES, keys.UPGRADES, "LEFT", "RIGHT")
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def remove(self, raw: str) -> None:
        """Drop a finished request."""
        with map_redis_errors():
            self.client.lrem(keys.UPGRADES, 1, raw)

    def requests(self) -> list[dict[str, Any]]:
        """The queued requests, in queue order."""
        with map_redis_errors():
            raw: list[bytes] = self.client.lrange(keys.UPGRADES, 0, -1)  # type: ignore[assignment]
        return [json.loads(r) for r in raw]
