"""What the chaos runs on: one durable Valkey (`OneValkey`), the fault proxy in front of it, and the
big disruptions planned for it (restarts), which the `Chaos` thread carries out at their planned moments."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import redis

from tests.chaos.servers import DurableValkey
from tests.chaos.settings import VALKEY_RESTARTS_AT
from tests.support.faultproxy import FaultProxy

Note = Callable[[str], None]


class Store(Protocol):
    """The servers under chaos. `proxied_url` reaches them through the proxies, `direct_url` around them
    where that is possible (never on a cluster, whose clients go where its nodes announce: the proxies)."""

    proxies: list[FaultProxy]
    disruptions: Counter[str]  # what `disrupt` did, by kind

    @property
    def direct_url(self) -> str: ...

    @property
    def proxied_url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reader(self) -> redis.Redis | redis.RedisCluster:
        """A client for the checks that goes around the proxies."""
        ...

    def plan(self, submit_s: float) -> list[float]:
        """When (seconds into the chaos) to disrupt the servers; all of them are carried out."""
        ...

    def disrupt(self, rng: random.Random, note: Note) -> None:
        """The next planned disruption; returns with every server up again."""
        ...

    def pick_proxies(self, rng: random.Random) -> tuple[list[FaultProxy], str]:
        """The proxies a cut or a partition hits, and how to name them in the timeline."""
        ...

    def serving_proxies(self) -> list[FaultProxy]:
        """The proxies in front of the servers that answer clients now (where a lost reply hurts)."""
        ...

    def healthy(self) -> str | None:
        """None when every server is up and serving; else what is wrong."""
        ...


class OneValkey:
    """One durable Valkey, with one proxy in front of it for the proxied processes; restarted twice."""

    def __init__(self, data_dir: Path) -> None:
        self.valkey = DurableValkey(data_dir)
        self.proxy = FaultProxy("127.0.0.1", self.valkey.port)
        self.proxies = [self.proxy]
        self.disruptions: Counter[str] = Counter()

    @property
    def direct_url(self) -> str:
        return self.valkey.url

    @property
    def proxied_url(self) -> str:
        return self.valkey.url_at(self.proxy.port)

    def start(self) -> None:
        self.valkey.start()
        self.proxy.start()

    def stop(self) -> None:
        self.proxy.stop()
        self.valkey.stop()

    def reader(self) -> redis.Redis:
        return redis.Redis.from_url(self.valkey.url, socket_timeout=30)

    def plan(self, submit_s: float) -> list[float]:
        return [f * submit_s for f in VALKEY_RESTARTS_AT]

    def disrupt(self, rng: random.Random, note: Note) -> None:
        down = rng.uniform(0.3, 1.5)
        began = time.monotonic()
        note(f"valkey: stopping (down for {down:.1f}s)")
        self.valkey.restart(down)
        self.disruptions["valkey restart"] += 1
        note(f"valkey: restarted on port {self.valkey.port} after {time.monotonic() - began:.1f}s")

    def pick_proxies(self, rng: random.Random) -> tuple[list[FaultProxy], str]:
        return [self.proxy], "proxy"

    def serving_proxies(self) -> list[FaultProxy]:
        return [self.proxy]

    def healthy(self) -> str | None:
        return None if self.valkey.server is not None else "valkey is down"
