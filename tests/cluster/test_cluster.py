"""Dolmen on a real Valkey Cluster (3 masters, 3 replicas), always part of the suite.

`--redis` names any one node; Dolmen finds out it is a cluster and spreads
execution trees over the masters by their hash tags. The whole suites run
on a cluster with DOLMEN_TEST_CLUSTER=1 (see tests/conftest.py); these tests
keep the essentials covered on every run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.cluster import ClusterNode
from redis.crc import key_slot

from dolmen.gateway.settings import GatewaySettings
from dolmen.platform.client import Client
from dolmen.platform.errors import StoreError
from dolmen.platform.store import keys, outbox
from dolmen.platform.store.async_batch import AsyncBatcher
from dolmen.platform.store.connection import connect, connect_async, describe, is_cluster, known_keys
from dolmen.platform.store.urls import seed_urls, with_every_node
from dolmen.platform.store.leases import Leases
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.topology import cluster_view, replica_shortfall
from tests.support.cli import run_platform
from tests.gateway.helpers import GatewayThread
from tests.support.cluster import ValkeyClusterForTests
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.servers import ValkeyForTests, flush
from tests.support import indexes

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyClusterForTests]:
    with ValkeyClusterForTests(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


@pytest.fixture
def redis_url(cluster: ValkeyClusterForTests) -> str:
    """Overrides the session Valkey: every fixture built on `redis_url` (processes, client) uses the cluster."""
    flush(cluster.url)
    # Any node will do, as for a user: the last one is a replica.
    return cluster.nodes[-1].url


def masters_holding(client: redis.RedisCluster, pattern: str) -> int:
    """On how many masters keys matching `pattern` are."""
    return sum(
        1 for node in client.get_primaries() if next(iter(client.scan_iter(match=pattern, target_nodes=node)), None)
    )


def test_a_cluster_node_url_gets_a_cluster_client(redis_url: str, valkey: ValkeyForTests) -> None:
    client = connect(redis_url)
    try:
        assert isinstance(client, redis.RedisCluster) and is_cluster(redis_url)
        assert describe(client).startswith("the cluster reached through 127.0.0.1:")
        client.set("a", 1)
        client.set("b", 2)  # another slot: a plain client would get MOVED for one of them
        assert client.get("a") == b"1" and client.get("b") == b"2"
    finally:
        client.close()
    if not is_cluster(valkey.url):
        plain = connect(valkey.url)
        assert isinstance(plain, redis.Redis)
        plain.close()


def test_workflows_with_children_and_join_sets_run_on_a_cluster(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """Deploy, then serial children and a fan-out of 30: the trees land on several masters."""
    deploy(redis_url, [activity(), workflow()])
    processes.runner()
    processes.runner()
    processes.scheduler()
    roots = [client.submit(f"{F}.serial", [5]).execution_id for _ in range(10)]
    roots.append(client.submit(f"{F}.fan-out", [30]).execution_id)
    states = [client.wait(root, 120) for root in roots]
    assert [s.outcome.value for s in states if s.outcome is not None] == [30] * 10 + [930]
    assert masters_holding(client.redis, f"{keys.PREFIX}:{{E_*}}:*:state") >= 2  # type: ignore[arg-type]
    # Two shards per master: every master holds queues and indexes, and each shard its share of the executions.
    shards = indexes.shards_of(client.redis)
    assert shards.count == 6
    assert masters_holding(client.redis, f"{keys.PREFIX}:{{s*}}:q:*") == 3  # type: ignore[arg-type]
    assert all(client.redis.zcard(key) for key in shards.every("executions"))


def test_script_calls_and_stream_reads_need_no_key_lookups_on_the_server(redis_url: str) -> None:
    """redis-py asks a node for the keys of EVALSHA and XREADGROUP (COMMAND GETKEYS); Dolmen's client reads them itself."""
    client = connect(redis_url)
    assert isinstance(client, redis.RedisCluster)
    for node in client.get_primaries():
        client.config_resetstat(target_nodes=node)  # type: ignore[call-arg]
    leases = Leases(client)
    leases.read_now([([f"{A}.double"], 10)], "r1")
    leases.read("r1", [f"{A}.double"], 10, 1)
    pipe = leases.scripts.pipeline()
    for root in ("E_A", "E_B", "E_C"):
        outbox.mark_dirty(pipe, outbox.dirty_mark(root))
    pipe.execute()
    lookups = sum(
        int(client.info("commandstats", target_nodes=node).get("cmdstat_command|getkeys", {}).get("calls", 0))  # type: ignore[call-arg, union-attr]
        for node in client.get_primaries()
    )
    assert lookups == 0
    client.close()


def test_the_gateway_invokes_and_waits_on_a_cluster(redis_url: str, processes: Processes, data_dir: Path) -> None:
    deploy(redis_url, [activity()])
    processes.runner()
    processes.scheduler()
    gateway = GatewayThread(GatewaySettings(redis_url=redis_url, data_dir=data_dir)).start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=60) as http:
            answers = [http.post(f"/v1/functions/{A}.double", params={"wait": 30}, json=[n]) for n in range(20)]
            assert [a.status_code for a in answers] == [200] * 20
            assert [a.json()["result"] for a in answers] == [2 * n for n in range(20)]
            listed = http.get("/v1/executions", params={"limit": 50}).json()
            assert len(listed["executions"]) == 20
    finally:
        gateway.stop()


def test_keys_are_read_from_script_calls_and_stream_reads() -> None:
    assert known_keys(("EVALSHA", "abc", 2, "k1", "k2", "arg")) == ["k1", "k2"]
    assert known_keys(("XREADGROUP", "GROUP", "g", "c", "COUNT", 5, "STREAMS", "s1", "s2", ">", ">")) == ["s1", "s2"]
    assert known_keys((b"XREAD", b"BLOCK", 10, b"STREAMS", b"s", b"0")) == [b"s"]
    assert known_keys(("GET", "k")) is None


def test_an_unreachable_node_is_a_plain_error(tmp_path: Path) -> None:
    """A URL nobody answers on is not taken for a cluster, and fails on first use naming the server."""
    client = connect("redis://127.0.0.1:1")
    assert isinstance(client, redis.Redis)
    with pytest.raises(StoreError, match=r"cannot reach Redis .*127\.0\.0\.1:1\b"):
        Client(client).revision()


def test_a_call_that_must_run_first_holds_back_the_rest_of_its_pipeline(redis_url: str) -> None:
    """On a cluster each node gets its part of a pipeline at once: a dirty mark goes in a round trip ahead of its write.

    If it fails, nothing after it is sent (sync pipeline and the gateway's batcher alike).
    """
    client = connect(redis_url)
    scripts = Scripts(client)
    pipe = scripts.pipeline()
    assert not pipe.ordered
    pipe.script("mark_dirty", ["dolmen:{s0}:dirty"], ["not-a-number-of-args"], first=True)  # refused: too few arguments
    pipe.set("held-back", 1)
    results = pipe.execute(raise_errors=False)
    assert isinstance(results[0], Exception) and results[1] is results[0]
    assert client.get("held-back") is None
    pipe = scripts.pipeline()
    mark = outbox.dirty_mark("E_X")
    outbox.mark_dirty(pipe, mark)
    pipe.set("sent", 1)
    pipe.execute()
    assert client.get("sent") == b"1" and indexes.zscore(client, "dirty", mark) is not None

    async def batched() -> list[object]:
        batcher = AsyncBatcher(connect_async(redis_url))
        try:
            await batcher.ready()
            commands = batcher.commands()
            commands.script("mark_dirty", ["dolmen:{s0}:dirty"], ["too", "many", "args"], first=True)
            commands.execute_command("SET", "held-back-async", 1)
            return await batcher.execute(commands)
        finally:
            await batcher.close()
            await batcher.client.aclose()

    replies = asyncio.run(batched())
    assert isinstance(replies[0], Exception) and replies[1] is replies[0]
    assert client.get("held-back-async") is None
    client.close()


def test_the_batchers_links_leave_the_async_client_usable(redis_url: str) -> None:
    """The batcher reads the slot map through the shared asyncio client; its own commands still work afterwards."""

    async def both() -> tuple[object, object]:
        client = connect_async(redis_url)
        batcher = AsyncBatcher(client)
        try:
            commands = batcher.commands()
            commands.execute_command("SET", "by-batcher", "1")
            await batcher.execute(commands)
            return await client.get("by-batcher"), await client.get("other-slot")
        finally:
            await batcher.close()
            await client.aclose()

    assert asyncio.run(both()) == (b"1", None)


def test_with_wait_replicas_each_master_confirms_its_writes_before_the_gateway_answers(
    redis_url: str, data_dir: Path
) -> None:
    """--wait-replicas 1: invocations spread over the masters are answered once each one's replica holds them.

    WAIT runs on each master written to (it counts only its own connection's
    writes); a cancel is confirmed on every master; asking for 2 replicas of
    masters that have 1 is a 503 naming a master.
    """
    deploy(redis_url, [activity()])
    client = connect(redis_url)
    assert isinstance(client, redis.RedisCluster)
    masters = client.get_primaries()
    waits_before = {node.name: _waits(client, node) for node in masters}
    settings = GatewaySettings(redis_url=redis_url, data_dir=data_dir, wait_replicas=1, wait_timeout_ms=1000)
    gateway = GatewayThread(settings).start()
    short = GatewayThread(settings.replace(wait_replicas=2, wait_timeout_ms=200)).start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=60, trust_env=False) as http:
            answers = [http.post(f"/v1/functions/{A}.double", json=[n]) for n in range(12)]
            assert [a.status_code for a in answers] == [202] * 12
            ids = [a.json()["execution_id"] for a in answers]
            for execution_id in ids:
                assert _on_replica(client, keys.state(execution_id))[b"status"] == b"pending"
            assert masters_holding(client, f"{keys.PREFIX}:{{E_*}}:*:state") >= 2
            cancelled = http.post(f"/v1/executions/{ids[0]}/cancel")
            assert cancelled.status_code == 200 and _on_replica(client, keys.state(ids[0]))[b"status"] == b"finished"
        waited_on = [node.name for node in masters if _waits(client, node) > waits_before[node.name]]
        assert len(waited_on) == len(masters)  # the cancel's confirmation reached every master
        with httpx.Client(base_url=short.url, timeout=60, trust_env=False) as http:
            refused = http.post(f"/v1/functions/{A}.double", json=[1])
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            message = refused.json()["error"]["message"]
            assert "only 1 of the 2 replicas asked for (--wait-replicas) confirmed it within 200 ms" in message
            assert any(f"the master at {node.name}" in message for node in masters)
    finally:
        short.stop()
        gateway.stop()
        client.close()


def _waits(client: redis.RedisCluster, node: ClusterNode) -> int:
    """How many WAIT commands `node` has run."""
    stats: dict[str, Any] = client.info("commandstats", target_nodes=node)  # type: ignore[assignment]
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


def _on_replica(client: redis.RedisCluster, key: str) -> dict[bytes, bytes]:
    """The hash at `key` as a replica of its master holds it now."""
    replica = client.nodes_manager.slots_cache[key_slot(key.encode())][1]
    plain = redis.Redis(host=replica.host, port=replica.port)
    try:
        plain.execute_command("READONLY")
        return plain.hgetall(key)  # type: ignore[return-value]
    finally:
        plain.close()


def test_status_judges_the_cluster_from_its_nodes_flags() -> None:
    nodes = {
        "10.0.0.1:7000": {"flags": "myself,master", "slots": [["0", "5460"]], "node_id": "a"},
        "10.0.0.2:7000": {"flags": "master,fail", "slots": [], "node_id": "b"},
        "10.0.0.3:7000": {"flags": "master", "slots": [["5461", "16383"]], "node_id": "c"},
        "10.0.0.4:7000": {"flags": "slave", "slots": [], "node_id": "d", "master_id": "c"},
        "10.0.0.5:7000": {"flags": "slave,fail?", "slots": [], "node_id": "e", "master_id": "a"},
    }
    view = cluster_view(nodes, "ok", "10.0.0.1:7000")
    assert view.masters == ("10.0.0.1:7000", "10.0.0.3:7000") and view.replicas == 1
    assert view.replicas_of == (("10.0.0.1:7000", 0), ("10.0.0.3:7000", 1))  # a failing replica does not count
    assert replica_shortfall(1, view.replicas_of, "gateway g") == [
        "gateway g waits for 1 replica of each write (--wait-replicas), but the master at 10.0.0.1:7000 has 0: every"
        " write to it waits --wait-timeout-ms and is answered 503 replicas_unconfirmed; add replicas to it or lower"
        " --wait-replicas to 0"
    ]
    assert view.describe() == "cluster of 2 masters, 1 replica"
    assert view.problems() == [
        "cluster node 10.0.0.2:7000 (master) is failing",
        "cluster node 10.0.0.5:7000 (replica, suspected) is failing",
    ]
    down = cluster_view(nodes, "fail", "10.0.0.1:7000")
    assert "reports state 'fail'" in down.problems()[-1] and "until a replica takes over" in down.problems()[-1]


def test_status_shows_the_cluster_and_its_shards(redis_url: str) -> None:
    flush(redis_url)
    Scripts(connect(redis_url)).shards  # noqa: B018 - the store's first use sets the count
    shown = run_platform("--redis", redis_url, "status", "--json")
    redis_status = json.loads(shown.stdout)["redis"]
    assert redis_status["cluster"]["state"] == "ok" and len(redis_status["cluster"]["masters"]) == 3
    assert redis_status["cluster"]["replicas"] == 3 and redis_status["cluster"]["failing"] == []
    assert redis_status["shards"] == 6
    text = run_platform("--redis", redis_url, "status").stdout
    assert "external cluster of 3 masters, 3 replicas, 6 shards" in text
    assert text.count(", 1 replica\n") == 3  # each master, by address
    assert redis_status["cluster"]["replicas_of"] == {address: 1 for address in redis_status["cluster"]["masters"]}


def test_up_hands_its_processes_every_node_of_the_cluster(cluster: ValkeyClusterForTests, own_valkey: ValkeyForTests) -> None:
    """So that a process restarted after the node `--redis` named died still finds the cluster (`with_every_node`)."""
    client = connect(cluster.url)
    try:
        every = with_every_node(cluster.url, client)
    finally:
        client.close()
    assert seed_urls(every)[0] == cluster.url  # the one given first
    assert sorted(seed_urls(every)) == sorted(node.url for node in cluster.nodes)
    single = connect(own_valkey.url)
    try:
        assert with_every_node(own_valkey.url, single) == own_valkey.url
    finally:
        single.close()
