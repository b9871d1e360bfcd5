"""A master of the cluster is killed mid-run: its replica takes over and every execution still finishes.

The master killed is the seed node the processes were given, which also
holds the first shard of the queues: runners, the scheduler and the gateway all lose a
connection, the new master knows no scripts (SCRIPT LOAD is not
replicated), and the finish subscription may have been on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from dolmen.gateway.settings import GatewaySettings
from dolmen.platform.client import Client
from dolmen.platform.errors import StoreError
from dolmen.platform.store.connection import map_redis_errors
from dolmen.platform.store.urls import seed_urls
from tests.gateway.helpers import GatewayThread
from tests.support.cluster import ValkeyClusterForTests
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support import indexes
from tests.support.cli import run_platform

pytestmark = pytest.mark.slow

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ValkeyClusterForTests]:
    """A cluster of the test's own: the test kills one of its masters."""
    with ValkeyClusterForTests(tmp_path / "cluster") as nodes:
        yield nodes


@pytest.fixture
def redis_url(cluster: ValkeyClusterForTests) -> str:
    return cluster.url


def node_holding(cluster: ValkeyClusterForTests, key: str) -> int:
    """The index in `cluster.nodes` of the master that serves `key`."""
    client = redis.RedisCluster.from_url(cluster.url)
    try:
        node = client.get_node_from_key(key)
        assert node is not None
        return next(i for i, n in enumerate(cluster.nodes) if n.server is not None and n.port == int(node.port))
    finally:
        client.close()


def test_killing_the_master_of_the_queues_loses_no_execution(
    cluster: ValkeyClusterForTests, redis_url: str, processes: Processes, client: Client, data_dir: Path
) -> None:
    deploy(redis_url, [activity(), workflow()])
    processes.runner()
    processes.scheduler()
    processes.wait_ready()  # a process that starts while its --redis node is down cannot find the cluster
    gateway = GatewayThread(GatewaySettings(redis_url=cluster.nodes[-1].url, data_dir=data_dir)).start()
    try:
        before = [client.submit(f"{F}.serial", [8]).execution_id for _ in range(20)]
        victim = node_holding(cluster, indexes.shards_of(client.redis).queue_in(0, A))
        cluster.nodes[victim].kill()
        killed_at = time.monotonic()
        # Submitted while the cluster fails over: through the gateway, which retries and reroutes.
        with httpx.Client(base_url=gateway.url, timeout=120) as http:
            during = []
            for n in range(10):
                answer = http.post(f"/v1/functions/{A}.double", params={"wait": 60}, json=[n])
                # 202: accepted, not finished within the wait; 503: refused while no master served its slot.
                assert answer.status_code in (200, 202, 503), answer.text
                if answer.status_code == 200:
                    assert answer.json()["result"] == 2 * n
                elif answer.status_code == 202:
                    during.append(answer.json()["execution_id"])
            cluster.wait_ok(60)
            healed_s = time.monotonic() - killed_at
            after = [http.post(f"/v1/functions/{A}.double", params={"wait": 60}, json=[n]) for n in range(10)]
        assert [a.status_code for a in after] == [200] * 10
        assert [a.json()["result"] for a in after] == [2 * n for n in range(10)]
        states = [client.wait(execution_id, 120) for execution_id in before]
        assert [s.status for s in states] == ["finished"] * 20
        assert [s.outcome.value for s in states if s.outcome is not None] == [72] * 20
        # Accepted during the failover: their effects were left to the sweeps, which deliver them.
        assert [client.wait(execution_id, 120).status for execution_id in during] == ["finished"] * len(during)
        assert healed_s < 60
    finally:
        gateway.stop()


def test_a_process_given_several_nodes_starts_while_the_first_is_down(
    cluster: ValkeyClusterForTests, processes: Processes, client: Client
) -> None:
    """`--redis redis://A,B`: with node A dead (its replica took over), the processes find the cluster through B."""
    deploy(cluster.url, [activity()])
    victim = node_holding(cluster, indexes.shards_of(client.redis).queue_in(0, A))
    dead, alive = cluster.nodes[victim], next(n for n in cluster.nodes if n is not cluster.nodes[victim])
    dead.kill()
    cluster.wait_ok(60)
    assert seed_urls(f"redis://127.0.0.1:{dead.port},127.0.0.1:{alive.port}") == [dead.url, alive.url]
    processes.redis_url = f"redis://127.0.0.1:{dead.port},127.0.0.1:{alive.port}"
    processes.runner()
    processes.scheduler()
    processes.wait_ready()
    execution_id = client.submit(f"{A}.double", [21]).execution_id
    state = client.wait(execution_id, 60)
    assert state.outcome is not None and state.outcome.value == 42
    # `platform status` names the dead node, and counts the replica that took over among the masters.
    shown = run_platform("--redis", processes.redis_url, "status", "--json")
    redis_status = json.loads(shown.stdout)["redis"]
    assert redis_status["cluster"]["failing"] == [f"127.0.0.1:{dead.port} (master)"], redis_status
    assert len(redis_status["cluster"]["masters"]) == 3 and redis_status["shards"] == 6
    assert any(f"cluster node 127.0.0.1:{dead.port} (master) is failing" in p for p in json.loads(shown.stdout)["problems"])


def test_a_plain_client_that_meets_a_cluster_names_the_fix(cluster: ValkeyClusterForTests) -> None:
    """A process that took a cluster node for a single server (it did not answer at start) gets MOVED: the error says what to do."""
    plain = redis.Redis.from_url(cluster.url)
    try:
        with pytest.raises(StoreError, match=r"node of a Redis Cluster .* Restart the process"):
            with map_redis_errors(cluster.url):
                for n in range(20):  # some of these keys live on another master
                    plain.get(f"key-{n}")
    finally:
        plain.close()
