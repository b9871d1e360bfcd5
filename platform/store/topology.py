"""What the store is made of, for `platform status`: one server, or a cluster's masters and replicas and their health.

A cluster keeps serving while one master is down only once its replica has
taken over; until then every write to that master's slots fails. Status
shows the masters, the replicas, the nodes the others flag as failing, and
the cluster's own verdict (`cluster_state` of CLUSTER INFO), read from the
first node that answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from ..errors import StoreUnavailableError
from .connection import Redis


@dataclass(frozen=True, slots=True)
class ClusterView:
    """A cluster as one of its nodes sees it (CLUSTER NODES and CLUSTER INFO)."""

    state: str  # `ok`, or `fail` while some slots have no reachable master
    masters: tuple[str, ...]  # addresses of the masters serving slots
    replicas: int
    failing: tuple[str, ...]  # nodes flagged `fail` (agreed) or `fail?` (suspected), with their role
    asked: str  # the node that answered
    # Replicas that follow each master in `masters` and are not failing (what `--wait-replicas` can count on).
    replicas_of: tuple[tuple[str, int], ...] = ()

    def describe(self) -> str:
        """`cluster of 3 masters, 3 replicas`."""
        masters = len(self.masters)
        return f"cluster of {masters} master{'' if masters == 1 else 's'}, {self.replicas} replica{'' if self.replicas == 1 else 's'}"

    def problems(self) -> list[str]:
        """What `platform status` reports as unhealthy: failing nodes, and a cluster state other than `ok`."""
        found = [f"cluster node {node} is failing" for node in self.failing]
        if self.state != "ok":
            found.append(
                f"the cluster reports state '{self.state}' (asked {self.asked}): some slots have no master that answers, "
                "so writes to them fail until a replica takes over or the master comes back; check the failing nodes"
            )
        return found

    def to_json(self) -> dict[str, Any]:
        """`platform status --json`'s form; `replicas_of` as master address -> replicas."""
        return {
            "state": self.state, "masters": list(self.masters), "replicas": self.replicas, "failing": list(self.failing),
            "replicas_of": dict(self.replicas_of),
        }  # fmt: skip


def cluster_view(nodes: dict[str, dict[str, Any]], state: str, asked: str) -> ClusterView:
    """Judge a parsed CLUSTER NODES reply (redis-py's `parse_cluster_nodes`: address -> flags, slots, ...). Pure."""
    masters: list[str] = []
    replicas = 0
    failing: list[str] = []
    ids: dict[str, str] = {}  # master node id -> address
    following: dict[str, int] = {}  # master node id -> replicas that are not failing
    for address, node in sorted(nodes.items()):
        flags = set(str(node.get("flags", "")).split(","))
        role = "master" if "master" in flags else "replica"
        if "fail" in flags or "fail?" in flags:
            failing.append(f"{address} ({role}{', suspected' if 'fail?' in flags else ''})")
        elif role == "master" and node.get("slots"):
            masters.append(address)
            ids[str(node.get("node_id", ""))] = address
        elif role == "replica":
            replicas += 1
            master_id = str(node.get("master_id", ""))
            following[master_id] = following.get(master_id, 0) + 1
    replicas_of = tuple((address, following.get(node_id, 0)) for node_id, address in sorted(ids.items(), key=lambda kv: kv[1]))
    return ClusterView(state, tuple(masters), replicas, tuple(failing), asked, replicas_of)


def replica_shortfall(wanted: int, replicas_of: Sequence[tuple[str, int]], who: str) -> list[str]:
    """Problems: masters with fewer replicas than `who` (a gateway) waits for with `--wait-replicas wanted`. Pure."""
    return [
        f"{who} waits for {wanted} replica{'' if wanted == 1 else 's'} of each write (--wait-replicas), but the master "
        f"at {address} has {count}: every write to it waits --wait-timeout-ms and is answered 503 replicas_unconfirmed; "
        f"add replicas to it or lower --wait-replicas to {count}"
        for address, count in replicas_of
        if count < wanted
    ]


def replicas_of_masters(client: Redis) -> tuple[tuple[str, int], ...]:
    """Each master's replicas in sync: the cluster's (CLUSTER NODES), or a single server's (INFO replication).

    Raises `StoreUnavailableError` when no node answers.
    """
    view = read_cluster(client)
    if view is not None:
        return view.replicas_of
    try:
        info: Any = client.info("replication")
    except RedisError as exc:
        raise StoreUnavailableError(f"Redis does not answer INFO replication: {exc}") from exc
    online = sum(1 for key, value in info.items() if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")
    kwargs: Any = client.get_connection_kwargs()
    return ((f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}", online),)


def read_cluster(client: Redis) -> ClusterView | None:
    """The cluster as the first node that answers sees it; None for a single server.

    Raises `StoreUnavailableError` when no node answers.
    """
    if not isinstance(client, redis.RedisCluster):
        return None
    errors: list[str] = []
    for node in client.get_nodes():
        try:
            nodes: Any = client.execute_command("CLUSTER NODES", target_nodes=node)
            info: Any = client.execute_command("CLUSTER INFO", target_nodes=node)
        except RedisError as exc:
            errors.append(f"{node.name}: {exc}")
            continue
        return cluster_view(nodes, str(info.get("cluster_state", "unknown")), node.name)
    raise StoreUnavailableError(f"no cluster node answers ({'; '.join(errors)}); check that the nodes run")
