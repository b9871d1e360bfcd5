"""Redis's memory: how full it is (`INFO memory`), and waiting for room when it is full.

Everything Dolmen stores lives in Redis's memory. With `maxmemory` and the
`noeviction` policy (the embedded Valkey's settings), a full server refuses
writes with an OOM error, which `connection.map_redis_errors` turns into
`StoreFullError`; any other policy lets Redis delete keys to make room, which
loses executions.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import redis
import structlog
from redis.exceptions import OutOfMemoryError

from ..backoff import Backoff
from ..errors import StoreFullError
from .connection import Redis, map_redis_errors

log = structlog.get_logger("dolmen.store")

# The only policy that never deletes a key Dolmen wrote.
NOEVICTION = "noeviction"


@dataclass(frozen=True, slots=True)
class StoreMemory:
    """Redis's memory use as `INFO memory` reports it, in bytes (`max_bytes` 0: no limit).

    See https://valkey.io/commands/info/ (`used_memory`, `maxmemory`, `maxmemory_policy`).
    """

    used_bytes: int
    max_bytes: int
    policy: str
    # Room a write may need on top (the largest value it carries, at most 5% of maxmemory):
    # Redis counts a request's own bytes in its memory use while it decides, so a large
    # write is refused while the used figure, read between writes, stays just under the limit.
    headroom_bytes: int = 0
    # On a cluster, the master these figures are of (the fullest); '' for a single server.
    node: str = ""

    def fullness(self) -> tuple[bool, float]:
        """How near the limit, for comparing servers: a server with a limit first, then used (plus headroom) per byte of it."""
        if not self.max_bytes:
            return (False, float(self.used_bytes))
        return (True, (self.used_bytes + self._headroom) / self.max_bytes)

    @property
    def percent(self) -> float | None:
        """Used memory as a percentage of maxmemory, or None without a limit."""
        return round(100.0 * self.used_bytes / self.max_bytes, 1) if self.max_bytes else None

    @property
    def full(self) -> bool:
        """Whether writes are refused now, or would be for a write of `headroom_bytes`."""
        return self.max_bytes > 0 and self.used_bytes + self._headroom >= self.max_bytes

    @property
    def _headroom(self) -> int:
        return min(self.headroom_bytes, self.max_bytes // 20)

    @property
    def evicts(self) -> bool:
        """Whether Redis deletes keys to make room, which loses executions."""
        return self.max_bytes > 0 and self.policy != NOEVICTION

    def problems(self) -> list[str]:
        """What `platform status` reports as unhealthy about memory."""
        out: list[str] = []
        if self.full:
            where = f" on master {self.node}" if self.node else ""
            limit = f"{format_bytes(self.used_bytes)} used of maxmemory {format_bytes(self.max_bytes)}{where}"
            if self.used_bytes >= self.max_bytes:
                what = f"Redis is full ({limit}): it refuses new executions and results"
            else:
                what = (
                    f"Redis is full ({limit}, less room than a write of {format_bytes(self._headroom)} takes): "
                    "it refuses the writes that do not fit, large submissions and results first"
                )
            out.append(
                f"{what}; remove finished executions "
                "(`platform executions purge`) or raise maxmemory (`platform up --maxmemory SIZE`, "
                "or CONFIG SET maxmemory on your own server)"
            )
        if self.evicts:
            out.append(
                f"Redis's maxmemory-policy is {self.policy}: when full it deletes keys, and with them executions; "
                f"set it to {NOEVICTION} (CONFIG SET maxmemory-policy {NOEVICTION})"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        """`platform status --json`'s form, with INFO memory's field names (bytes)."""
        return {
            "used_memory": self.used_bytes,
            "maxmemory": self.max_bytes,
            "used_percent": self.percent,
            "maxmemory_policy": self.policy,
            "full": self.full,
            **({"node": self.node} if self.node else {}),
        }

    def describe(self) -> str:
        """One line for people: used, limit, percentage and policy (of the fullest master, on a cluster)."""
        where = f" on the fullest master, {self.node}" if self.node else ""
        if not self.max_bytes:
            return f"{format_bytes(self.used_bytes)} used{where}, no maxmemory (policy {self.policy})"
        return (
            f"{format_bytes(self.used_bytes)} used of maxmemory {format_bytes(self.max_bytes)}{where} "
            f"({self.percent}%), policy {self.policy}"
        )


def parse_info(info: dict[str, Any], headroom_bytes: int = 0) -> StoreMemory:
    """The fields of an `INFO memory` reply that matter here (`headroom_bytes`: see `StoreMemory`)."""
    return StoreMemory(
        used_bytes=int(info.get("used_memory", 0)),
        max_bytes=int(info.get("maxmemory", 0)),
        policy=str(info.get("maxmemory_policy", "")),
        headroom_bytes=headroom_bytes,
    )


def refused_for_memory(reply: object) -> bool:
    """Whether a reply (an error in place, from a pipeline) is a write refused over maxmemory."""
    return isinstance(reply, OutOfMemoryError)


def read_memory(client: Redis, headroom_bytes: int = 0) -> StoreMemory:
    """Ask Redis how full it is; full counts room for a write of `headroom_bytes` (see `StoreMemory`)."""
    with map_redis_errors():
        if isinstance(client, redis.RedisCluster):
            # A write goes to its slot's master and is refused when that one is full: the fullest speaks for all.
            infos: dict[str, dict[str, Any]] = client.info("memory", target_nodes=redis.RedisCluster.PRIMARIES)  # type: ignore[assignment]
            each = [replace(parse_info(info, headroom_bytes), node=name) for name, info in sorted(infos.items())]
            return max(each, key=StoreMemory.fullness)
        info: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
    return parse_info(info, headroom_bytes)


def format_bytes(count: int) -> str:
    """`1536` -> `1.5 KiB`: binary units, one decimal."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop returns


class RoomWait:
    """Paces a writer that holds a lease and waits for a full store to take its write.

    `pause()` sleeps with backoff (up to `cap_s`) and logs at the first pause
    and then every `log_every_s`; it answers False, without sleeping, once
    `stop` is set: the writer then gives up and its lease expires.
    """

    def __init__(self, stop: threading.Event, what: str, *, cap_s: float = 2.0, log_every_s: float = 30.0) -> None:
        self.stop = stop
        self.what = what
        self.cap_s = cap_s
        self.log_every_s = log_every_s
        self.started = time.monotonic()
        self._pauses = Backoff(initial=0.05, cap=cap_s).delays()
        self._logged = 0.0

    def pause(self, error: StoreFullError) -> bool:
        """Wait before the next try; False when the process is stopping."""
        if self.stop.is_set():
            return False
        now = time.monotonic()
        if not self._logged or now - self._logged >= self.log_every_s:
            self._logged = now
            log.warning(
                "store full: waiting to write", write=self.what, waited_s=round(now - self.started, 1), error=str(error)
            )
        self.stop.wait(next(self._pauses))
        return not self.stop.is_set()


__all__ = ["NOEVICTION", "RoomWait", "StoreMemory", "format_bytes", "parse_info", "read_memory", "refused_for_memory"]
