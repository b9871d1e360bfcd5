"""What the chaos runs on: one durable Valkey (`OneValkey`) or a Valkey Cluster (`ProxiedCluster`), the
fault proxies in front of them, and the big disruptions planned for them (restarts, master kills,
failovers), which the `Chaos` thread carries out at their planned moments."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import redis

from tests.chaos.losses import LostWrites
from tests.chaos.servers import DurableValkey
from tests.chaos.settings import CLUSTER_DISRUPTION_EVERY_S, VALKEY_RESTARTS_AT
from tests.support.cluster import ValkeyClusterForTests
from tests.support.faultproxy import FaultProxy

Note = Callable[[str], None]


class Store(Protocol):
    """The servers under chaos. `proxied_url` reaches them through the proxies, `direct_url` around them
    where that is possible (never on a cluster, whose clients go where its nodes announce: the proxies)."""

    proxies: list[FaultProxy]
    disruptions: Counter[str]  # what `disrupt` did, by kind
    lost: LostWrites  # acknowledged writes lost on purpose (see losses.py)

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
        self.lost = LostWrites()  # none: it restarts with every acknowledged write fsynced

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


class ProxiedCluster:
    """A Valkey Cluster of 3 masters and 3 replicas, each node behind a proxy it announces (see
    `ValkeyClusterForTests`), so that every process, and every replication link, goes through one.

    Its disruptions, in turn: the first seed's master SIGKILLed (the node every process reached first,
    or the master that took its place), a master failed over by its replica
    (CLUSTER FAILOVER, which waits for the replica to have everything), another master SIGKILLed;
    with `lose_writes`, also a master SIGKILLed ahead of its replica. A killed master's replica is
    elected after `cluster-node-timeout` (2 s); the dead node is started again after a moment and
    rejoins as a replica of the one that took over.

    Losing acknowledged writes: replication is asynchronous, so a master killed under load may take
    writes with it that it acknowledged and did not pass on (README, "On a Valkey or Redis Cluster").
    The checks cannot tell an unknown loss from a bug (a lost step looks like a step never written),
    so no kill here loses anything the test does not know of. A plain kill loses nothing: the
    master's writes are paused first (CLIENT PAUSE WRITE, what a manual failover does too), and it is
    killed once its replica's offset equals its own. Everything else is a hard kill: the clients'
    connections die with commands in flight (the paused ones, which never ran), nobody hands the
    slots over, the replica must be elected, the new master knows no scripts and the finish
    subscriptions on the dead node are gone.

    The lossy kill (`lose_writes`, DOLMEN_CHAOS_LOSE_WRITES=1) first holds the replication link in
    the master's proxy for a moment (the master goes on answering its clients, the replica gets
    nothing), pauses the master's writes until the proxy holds all it sent, and kills it: the
    replica takes over without those bytes, which the proxy hands over (`lost`), so the checks know
    which trees and idempotency keys lost writes, and excuse only there what a lost write explains.
    It is not part of the default run: today executions whose tree lost writes can stay unfinished
    for good (the repair sweep walks the active index, whose entry the lost finish had already
    removed on another master; a blocked workflow whose delay's timer was lost is never woken).
    """

    KINDS = ("kill the first seed's master", "failover", "kill a master")
    LOSSY = "kill a master, losing writes"

    def __init__(self, data_dir: Path, lose_writes: bool = False) -> None:
        self.cluster = ValkeyClusterForTests(data_dir, proxied=True, password=os.urandom(12).hex())
        self.kinds = (*self.KINDS[:2], self.LOSSY, *self.KINDS[2:]) if lose_writes else self.KINDS
        self.proxies = self.cluster.proxies
        self.disruptions: Counter[str] = Counter()
        self.lost = LostWrites()
        self._done = 0
        self._last_masters = list(range(self.cluster.masters))

    @property
    def direct_url(self) -> str:
        return self.cluster.seeds_url  # (no way around the proxies for a cluster client)

    @property
    def proxied_url(self) -> str:
        return self.cluster.seeds_url

    def start(self) -> None:
        self.cluster.start()

    def stop(self) -> None:
        self.cluster.stop()

    def reader(self) -> redis.RedisCluster:
        return self.cluster.direct_cluster()

    def plan(self, submit_s: float) -> list[float]:
        count = max(len(self.kinds), round(submit_s / CLUSTER_DISRUPTION_EVERY_S))
        return [(k + 0.5) * submit_s / count for k in range(count)]

    def disrupt(self, rng: random.Random, note: Note) -> None:
        kind = self.kinds[self._done % len(self.kinds)]
        self._done += 1
        topology = self.cluster.topology()
        if kind == "kill the first seed's master":
            master = 0 if 0 in topology else next((m for m, replicas in topology.items() if 0 in replicas), 0)
        else:
            master = rng.choice(sorted(topology))
        replicas = topology.get(master, [])
        if not replicas:
            note(f"cluster: {kind}: node{master} has no replica online; skipped")
            self.disruptions[f"{kind}: skipped"] += 1
            return
        if kind == "failover":
            done = self._failover(master, replicas[0], note)
        else:
            hold_s = rng.uniform(0.3, 1.0) if kind == self.LOSSY else None
            done = self._kill(master, replicas[0], rng.uniform(0.5, 2.0), hold_s, note)
        self.disruptions[kind if done else f"{kind}: skipped"] += 1

    def _failover(self, master: int, replica: int, note: Note) -> bool:
        began = time.monotonic()
        note(f"cluster: CLUSTER FAILOVER on node{replica}, replica of node{master}")
        self.cluster.failover(replica)
        self.cluster.wait_synced(master, 30)
        note(f"cluster: node{replica} is master, node{master} its replica, after {time.monotonic() - began:.1f}s")
        return True

    def _kill(self, master: int, replica: int, down_s: float, hold_s: float | None, note: Note) -> bool:
        """SIGKILL `master` once `replica` has all it wrote, or (`hold_s`) all but what it wrote in
        the last `hold_s` seconds, which the replica never gets; then wait for the replica to be
        elected and bring the dead node back as its replica. False if the replica did not catch up."""
        proxy = self.proxies[master]
        if hold_s is not None:
            proxy.hold_replication()
            time.sleep(hold_s)
        quiet_s = self.cluster.quiesce(master, replica, proxy.held_bytes if hold_s is not None else lambda: 0)
        if quiet_s is None:
            if hold_s is not None:
                proxy.release_replication()  # the replica reconnects and gets it all
            note(f"cluster: node{replica} did not catch up with node{master} in 10 s; kill skipped")
            return False
        self.cluster.nodes[master].kill()
        killed = time.monotonic()
        if hold_s is not None:
            lost = proxy.release_replication()
            self.lost.add(lost)
            note(f"cluster: SIGKILL master node{master} {hold_s:.1f}s after node{replica} last heard from it:"
                 f" {len(lost)} bytes of writes lost (so far: {self.lost})")  # fmt: skip
        else:
            note(f"cluster: SIGKILL master node{master} (its writes paused {quiet_s * 1000:.0f} ms, until node{replica} had them)")
        self.cluster.wait_role(replica, "master")
        self.cluster.wait_ok(30)
        note(f"cluster: node{replica} elected in node{master}'s place after {time.monotonic() - killed:.1f}s")
        time.sleep(max(0.0, killed + down_s - time.monotonic()))
        self.cluster.rejoin(master)
        note(f"cluster: node{master} back as a replica of node{replica}, {time.monotonic() - killed:.1f}s after its kill")
        return True

    def pick_proxies(self, rng: random.Random) -> tuple[list[FaultProxy], str]:
        # Half the time every node's (clients and replication links alike), else one master's.
        if rng.random() < 0.5:
            return list(self.proxies), "every proxy"
        master = rng.choice(self._masters())
        return [self.proxies[master]], f"node{master}'s proxy (a master)"

    def serving_proxies(self) -> list[FaultProxy]:
        return [self.proxies[i] for i in self._masters()]

    def _masters(self) -> list[int]:
        """The masters now; those last seen while the node asked is being killed."""
        try:
            self._last_masters = sorted(self.cluster.topology())
        except (redis.RedisError, OSError):
            pass
        return self._last_masters

    def healthy(self) -> str | None:
        down = [f"node{i}" for i, node in enumerate(self.cluster.nodes) if node.server is None]
        if down:
            return f"down: {', '.join(down)}"
        topology = self.cluster.topology()
        if len(topology) != self.cluster.masters or any(len(replicas) != 1 for replicas in topology.values()):
            return f"masters and replicas: {topology}"
        return None
