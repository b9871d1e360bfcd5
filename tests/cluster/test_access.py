"""rediss:// and ACL users on a real Valkey Cluster: the platform runs end to end, a refusal names its fix.

Two clusters of 3 masters (no replicas: they would replicate past the TLS
proxies): one whose nodes clients reach through TLS only, each node behind
its own TLS terminator and announcing the terminator's port, and one in
plain TCP. On both, the default user is off and Dolmen logs in as a user
with `LEAST_ACL`, created on every node (ACLs are per node).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import redis.asyncio

from dolmen.platform.errors import StoreAccessError
from dolmen.platform.store.access import LEAST_ACL
from dolmen.platform.store.async_links import ClusterLink
from dolmen.platform.store.connection import connect, connect_async, describe, map_redis_errors
from tests.support.cluster import ValkeyClusterForTests
from tests.support.end_to_end import run_end_to_end
from tests.support.tls import TlsProxy, add_user, lock_down, make_certificates, tls_in_front, with_user


@dataclass
class SecuredCluster:
    """A cluster with `USER` on every node, the default user off, maybe behind TLS proxies."""

    nodes: ValkeyClusterForTests
    proxies: list[TlsProxy]
    ca: Path | None

    def url(self, *seeds: int) -> str:
        """The URL of these nodes, as clients must use them (through their proxies, with TLS), without a user."""
        if not self.proxies:
            return "redis://" + ",".join(f"127.0.0.1:{self.nodes.nodes[i].port}" for i in seeds)
        return "rediss://" + ",".join(f"127.0.0.1:{self.proxies[i].port}" for i in seeds) + f"?ssl_ca_certs={self.ca}"

    def admin(self, i: int) -> str:
        """Node i's plain address, as the `admin` user (ACLs are set node by node)."""
        return with_user(self.nodes.nodes[i].url, "admin", "admin")


@pytest.fixture(scope="module", params=["tls", "plain"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredCluster]:
    directory = tmp_path_factory.mktemp(f"cluster-{request.param}")
    with ValkeyClusterForTests(directory / "nodes", masters=3, replicas=0) as nodes:
        proxies: list[TlsProxy] = []
        ca = None
        if request.param == "tls":
            certificates = make_certificates(directory / "certificates")
            proxies, ca = tls_in_front(nodes, certificates), certificates.ca
        for node in nodes.nodes:
            add_user(lock_down(node.url), rules=LEAST_ACL)
        try:
            yield SecuredCluster(nodes, proxies, ca)
        finally:
            for proxy in proxies:
                proxy.stop()


def test_a_platform_runs_end_to_end_as_a_user_from_several_seeds(cluster: SecuredCluster, tmp_path: Path) -> None:
    """`rediss://USER:PASSWORD@A,B?ssl_ca_certs=...` (or redis://): every process finds the cluster and logs in on every node."""
    seeds = with_user(cluster.url(0, 1))
    client = connect(seeds)
    assert isinstance(client, redis.RedisCluster) and len(client.get_primaries()) == 3
    if cluster.proxies:
        assert {int(node.port) for node in client.get_primaries()} == {proxy.port for proxy in cluster.proxies}
    client.close()
    status = run_end_to_end(seeds, tmp_path)
    assert status["redis"]["ok"] and len(status["redis"]["cluster"]["masters"]) == 3, status  # type: ignore[index]
    assert "s3cret" not in str(status)


def test_a_wrong_password_is_refused_naming_the_fix(cluster: SecuredCluster) -> None:
    """A process given a wrong password stops at once, told how to pass a user and password."""
    with pytest.raises(StoreAccessError, match=r"refused to let this process in .*redis://USER:PASSWORD@HOST:PORT"):
        connect(with_user(cluster.url(2), password="wrong"))
    with pytest.raises(StoreAccessError, match="refused to let this process in"):
        connect_async(cluster.url(2))  # no user at all: the default user is off


def test_a_password_changed_under_running_clients_is_a_refusal_at_once(cluster: SecuredCluster) -> None:
    """The cluster client, and the per-master links of the gateway, re-connecting after the password changed
    say so at once rather than wait for a failover."""
    for i in range(3):
        add_user(cluster.admin(i), user="changing", password="first", rules=LEAST_ACL)
    url = with_user(cluster.url(0), "changing", "first")
    sync = connect(url)
    assert isinstance(sync, redis.RedisCluster)
    sync.set("dolmen:a", 1)
    client = connect_async(url)
    assert isinstance(client, redis.asyncio.RedisCluster)

    async def run() -> None:
        link = ClusterLink(client)
        assert await link.round_trip([("SET", "dolmen:a", 1), ("SET", "dolmen:b", 2)]) == [b"OK", b"OK"]
        for i in range(3):
            add_user(cluster.admin(i), user="changing", password="second", rules=LEAST_ACL)
        await link.close()
        with pytest.raises(StoreAccessError, match="refused to let this process in"):
            await link.round_trip([("GET", "dolmen:a")])
        await client.aclose()

    asyncio.run(run())
    for node in sync.get_nodes():
        node.redis_connection.connection_pool.disconnect()  # type: ignore[union-attr]
    asked = time.monotonic()
    for use in (lambda: sync.get("dolmen:a"), lambda: sync.pipeline().get("dolmen:a").get("dolmen:b").execute()):
        with pytest.raises(StoreAccessError, match="refused to let this process in"):
            with map_redis_errors(describe(sync)):
                use()
    assert time.monotonic() - asked < 5  # not the 15 s a failover gets
    sync.close()
