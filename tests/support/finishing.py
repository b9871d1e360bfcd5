"""Executions that no runner serves, finished by the test itself (for tests of waiting on results)."""

from __future__ import annotations

import json
from typing import Any

import redis

from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.records import Outcome

# A function no deployment has: its executions stay pending until a test finishes them.
NOBODY = "t:p/i@1.0.0.served-by-nobody"


def pending(client: redis.Redis, ffqn: str = NOBODY) -> str:
    """A new pending activity execution of `ffqn`; its id."""
    execution_id = ExecutionId.new().value
    ExecutionStore(client).create(
        NewExecution(id=execution_id, ffqn=ffqn, kind="activity", digest="sha256:x", params=[1])
    )
    return execution_id


def finish(client: redis.Redis, execution_id: str, value: Any) -> None:
    """Finish through the `finish` script (which notifies)."""
    leases = Leases(client)
    lease = leases.lock(execution_id, "test", 30_000)
    assert isinstance(lease, Lease)
    leases.finish(lease, Outcome(value=value))


def finish_silently(client: redis.Redis, execution_id: str, value: Any) -> None:
    """Write what `finish` writes, without the notification (a lost message)."""
    at = now_ms()
    outcome = json.dumps({"result": value})
    client.xadd(keys.log(execution_id), {"t": "finished", "d": outcome, "at": at})
    client.hset(
        keys.state(execution_id),
        mapping={"status": "finished", "outcome": outcome, "updated_at": at, "finished_at": at},
    )


def subscribers(client: redis.Redis | redis.RedisCluster) -> int:
    """How many connections subscribe to finish notifications (on all nodes of a cluster)."""
    if isinstance(client, redis.RedisCluster):
        return sum(
            int(dict(client.pubsub_numsub(keys.FINISHED_CHANNEL, target_nodes=node))[keys.FINISHED_CHANNEL.encode()])
            for node in client.get_nodes()
        )
    return int(dict(client.pubsub_numsub(keys.FINISHED_CHANNEL))[keys.FINISHED_CHANNEL.encode()])


def kill_connections(client: redis.Redis | redis.RedisCluster, kind: str) -> None:
    """CLIENT KILL TYPE `kind` (normal, pubsub, ...) on the server, or on every node of a cluster, but not `client`'s own."""
    if isinstance(client, redis.RedisCluster):
        client.client_kill_filter(_type=kind, skipme=True, target_nodes=redis.RedisCluster.ALL_NODES)
    else:
        client.client_kill_filter(_type=kind, skipme=True)


def connections(client: redis.Redis | redis.RedisCluster) -> int:
    """How many client connections the server has (all nodes of a cluster together)."""
    if isinstance(client, redis.RedisCluster):
        return sum(len(client.client_list(target_nodes=node)) for node in client.get_nodes())
    return len(client.client_list())
