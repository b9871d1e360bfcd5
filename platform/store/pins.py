"""Which revisions unfinished executions still run on: a light read for runners.

`platform versions` (deploy/versions.py) reads whole states to count
executions per digest; a runner only needs to know whether a revision has
any unfinished execution left, every few seconds, so this reads two fields
per execution and stops as soon as it knows.
"""

from __future__ import annotations

from collections.abc import Iterable


from . import keys
from . import shards as sharding
from .connection import Redis, map_redis_errors
from .records import continued
from .shards import Shards


def revisions_in_use(client: Redis, wanted: Iterable[int], batch: int = 1000, *, shards: Shards | None = None) -> set[int]:
    """The numbers among `wanted` that some unfinished execution names as its revision.

    The `active` index is scanned with ZSCAN, so an execution that stays
    unfinished during the whole scan is seen even while others come and go.
    """
    left = {str(n) for n in wanted}
    found: set[int] = set()
    if not left:
        return found
    shards = shards or sharding.load(client)
    with map_redis_errors():
        for active in shards.every("active"):
            _scan(client, active, left, found, batch)
            if not left:
                break
    return found


def _scan(client: Redis, active: str, left: set[str], found: set[int], batch: int) -> None:
    """Move from `left` to `found` the revisions that unfinished executions of one shard's `active` index run on."""
    cursor = 0
    while True:
        cursor, members = client.zscan(active, cursor, count=batch)  # type: ignore[misc]
        if members:
            pipe = client.pipeline(transaction=False)
            for raw_id, _ in members:
                pipe.hmget(keys.state(raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)), "rev", "status", "outcome")
            for rev, status, outcome in pipe.execute():
                # A workflow that continued as new is listed until its successor is: its chain still runs.
                if rev is None or (status == b"finished" and not continued(outcome)):
                    continue
                number = rev.decode()
                if number in left:
                    left.discard(number)
                    found.add(int(number))
            if not left:
                return
        if cursor == 0:
            return
