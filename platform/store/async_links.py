"""How `AsyncBatcher` reaches the store: one dedicated connection, or one per node of a cluster.

A round trip takes commands as argument tuples and answers with one raw
RESP2 reply per command, in order (an error reply as its exception in
place). On one server that is one pipeline on one connection
(`ServerLink`). On a Redis Cluster (`ClusterLink`), each command goes to the
master that owns its key's slot (the first key of a script call, the key of
any other command; a command without a key goes to every master and is
answered by the first); the nodes' pipelines go out concurrently. A command
answered MOVED or ASK (its slot moved, or a failover promoted a replica), or
TRYAGAIN/CLUSTERDOWN, is sent again after the slot map is read anew. A
connection error re-sends what was on that connection. Every Dolmen write
carries a write id and the other commands are idempotent, so a repeat is
harmless (see lua/_prelude.lua).

With a `ReplicaWait`, each node's part of a round trip that writes ends with
a barrier and Valkey's WAIT on the same connection (WAIT counts only its own
connection's writes, so a cluster needs it per master); a write whose master
heard from too few replicas in time is answered by `ReplicaWaitError` in
place of its reply. Round trips that only read wait for nothing.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..backoff import Backoff
from ..errors import ConfigError, ReplicaWaitError, StoreError, StoreUnavailableError
from . import keys
from .access import refusal, tls_hint
from .connection import SOCKET_TIMEOUT_S, AsyncRedis, dedicated_connection, describe, read_slots
from .plain_pipeline import packed

RETRIES = 3
Replies = list[Any]
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
# Replies that mean "ask again, elsewhere or later" on a cluster.
_REROUTE = (MovedError, AskError, TryAgainError, ClusterDownError)

DEFAULT_WAIT_TIMEOUT_MS = 1000
# A round trip that waits holds everything queued behind it (the batcher has one in flight),
# and must end well within the socket timeout: WAIT 0, "forever", is refused.
MAX_WAIT_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class ReplicaWait:
    """Wait for `replicas` replicas of each master a round trip wrote to to confirm it, at most `timeout_ms`.

    Raises `ConfigError` when `replicas` < 1 or `timeout_ms` is outside 1 to `MAX_WAIT_TIMEOUT_MS`.
    """

    replicas: int
    timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError(
                f"--wait-replicas must be at least 1 to wait for replicas, got {self.replicas}; 0 turns waiting off"
            )
        if not 1 <= self.timeout_ms <= MAX_WAIT_TIMEOUT_MS:
            raise ConfigError(
                f"--wait-timeout-ms must be 1 to {MAX_WAIT_TIMEOUT_MS} ms, got {self.timeout_ms}: every request "
                "of a gateway queues behind a round trip that waits (and Valkey's WAIT 0 waits forever)"
            )

    def command(self) -> tuple[Any, ...]:
        """The WAIT command (https://valkey.io/commands/wait/) that asks for this confirmation."""
        return ("WAIT", self.replicas, self.timeout_ms)


# Commands the batcher sends that never write: a round trip of only these waits for no replica.
# Anything else counts as a write (a script call always does), so a new command is waited for.
_READS = frozenset({
    "GET", "MGET", "STRLEN", "EXISTS", "TYPE", "TTL", "PTTL", "HGET", "HMGET", "HGETALL", "HLEN", "HEXISTS",
    "LRANGE", "LLEN", "LINDEX", "SMEMBERS", "SISMEMBER", "SCARD", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE",
    "ZSCORE", "ZCARD", "ZCOUNT", "ZRANK", "XRANGE", "XREVRANGE", "XLEN", "XREAD", "PING", "ECHO",
    "SCRIPT",  # SCRIPT LOAD: not passed to replicas (they get a script's effects)
})  # fmt: skip

# Sets and deletes a key in one of the master's own slots: nothing stays, but the master passes both
# commands to its replicas, so a WAIT after it covers everything the master ran before, not only this
# connection's writes: another connection's (a cancel through the synchronous client), and what an
# earlier attempt wrote when its repeat changed nothing (a script that finds its write id only reads).
# allow-oom: a full store still confirms the effects it lets through.
BARRIER_SCRIPT = "#!lua flags=allow-oom\nredis.call('SET', KEYS[1], '1')\nredis.call('DEL', KEYS[1])\nreturn 1"
SERVER_BARRIER_KEY = f"{keys.PREFIX}:replica-barrier"


class Link(Protocol):
    """A transport for raw pipelined round trips."""

    async def round_trip(self, args: Sequence[tuple[Any, ...]]) -> Replies:
        """Send commands (argument tuples) as pipelines; one raw RESP2 reply per command, in order, an error in place.

        Raises `StoreUnavailableError` when the store cannot be reached after
        `RETRIES` re-sends, `StoreAccessError` when it refuses this process,
        `StoreError` for another failure of the link.
        """
        ...

    async def barriers(self) -> list[tuple[Any, ...]]:
        """One barrier command per master (see `BARRIER_SCRIPT`), to confirm what other connections wrote."""
        ...

    async def close(self) -> None:
        """Drop the link's connections (a round trip after it opens them again)."""
        ...


def command_name(args: tuple[Any, ...]) -> str:
    """A command's name, upper case (`args[0]`, str or bytes)."""
    return args[0].upper() if isinstance(args[0], str) else args[0].decode().upper()


def writes(args: tuple[Any, ...]) -> bool:
    """Whether the command may write (and so, with a `ReplicaWait`, must be confirmed by replicas)."""
    return command_name(args) not in _READS


def barrier(key: Any) -> tuple[Any, ...]:
    """The barrier command (`BARRIER_SCRIPT`) on `key`, which picks the master it goes to."""
    return ("EVAL", BARRIER_SCRIPT, 1, key)


@functools.cache
def _barrier_keys() -> tuple[bytes, ...]:
    """A barrier key in each of the 16384 slots (found once, in about 0.1 s)."""
    found: dict[int, bytes] = {}
    tag = 0
    while len(found) < 16384:
        key = f"{SERVER_BARRIER_KEY}:{{{tag}}}".encode()
        found.setdefault(key_slot(key), key)
        tag += 1
    return tuple(found[slot] for slot in range(16384))


def _server_barrier() -> str:
    return SERVER_BARRIER_KEY


def barrier_key(slot: int) -> bytes:
    """A key in `slot` for the barrier, so it goes to the master of that slot."""
    return _barrier_keys()[slot]


def confirmation(wait: ReplicaWait, where: str, barrier_reply: Any, acked: Any) -> ReplicaWaitError | None:
    """None when WAIT's answer meets `wait`; else the error that answers the writes it was to confirm."""
    for reply in (barrier_reply, acked):
        if isinstance(reply, BaseException):
            return _unconfirmed(where, f"its replicas could not be asked to confirm it ({reply})")
    if int(acked) >= wait.replicas:
        return None
    asked = f"{wait.replicas} replica{'s' if wait.replicas > 1 else ''}"
    return _unconfirmed(
        where, f"only {int(acked)} of the {asked} asked for (--wait-replicas) confirmed it within {wait.timeout_ms} ms"
    )


def _unconfirmed(where: str, shortfall: str) -> ReplicaWaitError:
    return ReplicaWaitError(
        f"the master at {where} ran this write, but {shortfall}: it would be lost if that master failed before "
        "a replica had it. Sending it again is safe (Dolmen's writes are idempotent) and waits for the replicas "
        "again; if this goes on, check that master's replicas (INFO replication on it)",
        where=where,
        shortfall=shortfall,
    )


async def _pipeline(connection: AbstractConnection, args: Sequence[tuple[Any, ...]]) -> Replies:
    """Send `args` as one pipeline on `connection` and read every reply (RESP2, raw)."""
    async with asyncio.timeout(SOCKET_TIMEOUT_S):
        await connection.send_packed_command(packed(args, connection.pack_commands), check_health=False)
        replies: Replies = []
        for _ in args:
            try:
                replies.append(await connection.read_response(timeout=math.inf))
            except ResponseError as exc:
                replies.append(exc)
    return replies


async def _pipeline_confirmed(
    connection: AbstractConnection,
    args: Sequence[tuple[Any, ...]],
    wait: ReplicaWait | None,
    where: str,
    barrier_at: Callable[[], Any],
) -> Replies:
    """`_pipeline`, followed when `args` write and `wait` is set by a barrier and WAIT on the same connection.

    A write answered without an error gets `ReplicaWaitError` in place of its
    reply when the replicas fell short; error replies (MOVED among them) stay.
    """
    if wait is None or not any(writes(a) for a in args):
        return await _pipeline(connection, args)
    *replies, barrier_reply, acked = await _pipeline(connection, [*args, barrier(barrier_at()), wait.command()])
    error = confirmation(wait, where, barrier_reply, acked)
    if error is None:
        return replies
    return [error if writes(a) and not isinstance(r, BaseException) else r for a, r in zip(args, replies)]


def _unavailable(where: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"cannot reach Redis at {where} ({exc}); check that it runs (`platform status`) or pass the right --redis URL"
        f"{tls_hint(exc)}"
    )


# Between two sends of a round trip: jittered, so that the links of many processes
# that lost the same server do not all come back at the same moment.
RESEND_BACKOFF = Backoff(initial=0.02, cap=0.5, jitter=0.5)


class ServerLink:
    """One dedicated connection to one server, re-opened (and the round trip re-sent) after a connection error."""

    def __init__(self, client: redis.asyncio.Redis, wait: ReplicaWait | None = None) -> None:
        self.client = client
        self.wait = wait
        self._where = describe(client)
        self._connection: AbstractConnection | None = None

    async def round_trip(self, args: Sequence[tuple[Any, ...]]) -> Replies:
        """`Link.round_trip` on one connection; a connection error re-sends it up to `RETRIES` times.

        Then `StoreUnavailableError`; `StoreAccessError` at once when the server
        refuses this process, `StoreError` for any other redis-py error.
        """
        pauses = RESEND_BACKOFF.delays()
        for attempt in range(RETRIES + 1):
            try:
                if self._connection is None:
                    self._connection = await dedicated_connection(self.client)
                return await _pipeline_confirmed(self._connection, args, self.wait, self._where, _server_barrier)
            except asyncio.CancelledError:
                # Replies may be left unread on it: never reuse it.
                await asyncio.shield(self.close())
                raise
            except _CONNECTION_ERRORS as exc:
                await self.close()
                if (refused := refusal(exc, self._where)) is not None:
                    raise refused from None  # a wrong password or certificate: sending again changes nothing
                if attempt == RETRIES:
                    raise _unavailable(describe(self.client), exc) from None
                await asyncio.sleep(next(pauses))
            except RedisError as exc:
                await self.close()
                raise StoreError(f"Redis failed: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def barriers(self) -> list[tuple[Any, ...]]:
        """The one barrier on the server (`Link.barriers`)."""
        return [barrier(SERVER_BARRIER_KEY)]

    async def close(self) -> None:
        """Drop the connection (the next round trip opens another)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await _disconnect(connection)


def command_key(args: tuple[Any, ...]) -> Any:
    """The key that routes a command: a script call's first key, another command's first argument; None if keyless."""
    name = command_name(args)
    if name in ("EVALSHA", "EVAL"):
        return args[3] if int(args[2]) > 0 else None
    if name in ("SCRIPT", "PING") or len(args) < 2:
        return None
    return args[1]


def _slot(key: Any) -> int:
    return key_slot(key if isinstance(key, bytes) else str(key).encode())


class ClusterLink:
    """One dedicated connection per master of a Redis Cluster; each command goes to its slot's master."""

    def __init__(self, client: redis.asyncio.RedisCluster, wait: ReplicaWait | None = None) -> None:
        self.client = client
        self.wait = wait
        if wait is not None:
            _barrier_keys()  # now, while the process starts, not in a request's round trip
        self._connections: dict[str, AbstractConnection] = {}
        self._fresh = False  # whether the slot map was read since the last reroute

    async def round_trip(self, args: Sequence[tuple[Any, ...]]) -> Replies:
        """`Link.round_trip` over the masters: each command to its slot's master, the masters' parts concurrently.

        Commands answered MOVED, ASK, TRYAGAIN or CLUSTERDOWN, and those of a
        connection that failed, are sent again after the slot map is read anew,
        up to `RETRIES` + 1 times; then `StoreUnavailableError`. `StoreAccessError`
        at once when a node refuses this process, `StoreError` for another error.
        """
        replies: list[Any] = [None] * len(args)
        answered = [False] * len(args)
        todo = list(range(len(args)))
        pauses = RESEND_BACKOFF.delays()
        last: BaseException | None = None
        for attempt in range(RETRIES + 2):
            try:
                if not self._fresh:
                    await read_slots(self.client)
                    self._fresh = True
                groups = self._route(args, todo)
            except asyncio.CancelledError:
                raise
            except (RedisError, RedisClusterException, *_CONNECTION_ERRORS) as exc:  # RedisClusterException: no node answered
                if (refused := refusal(exc, describe(self.client))) is not None:
                    raise refused from None
                last = exc
                self._fresh = False
                await asyncio.sleep(next(pauses))
                continue
            outcomes = await asyncio.gather(
                *(self._send(node, [args[p] for p in positions]) for node, positions in groups), return_exceptions=True
            )
            again: set[int] = set()
            for (node, positions), outcome in zip(groups, outcomes):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                if isinstance(outcome, BaseException):
                    if (refused := refusal(outcome, node.name)) is not None:
                        raise refused from None
                    if not isinstance(outcome, _CONNECTION_ERRORS):
                        raise StoreError(f"Redis failed: {outcome}") from None
                    last = outcome
                    await self._drop(node)
                    self._fresh = False
                    again.update(p for p in positions if not answered[p])
                    continue
                for position, reply in zip(positions, outcome):
                    if isinstance(reply, _REROUTE):
                        last = reply
                        self._fresh = False
                        if not answered[position]:
                            again.add(position)
                    elif not answered[position]:
                        replies[position], answered[position] = reply, True
                        again.discard(position)
            if not again:
                return replies
            todo = sorted(again)
            if attempt < RETRIES + 1:
                await asyncio.sleep(next(pauses))
        raise StoreUnavailableError(
            f"a master of {describe(self.client)} did not answer ({last or 'no answer'}); if one of its masters "
            "died, the cluster fails over to a replica within seconds: try again, and check the nodes with "
            "`platform status`"
        ) from None

    def _route(self, args: Sequence[tuple[Any, ...]], positions: list[int]) -> list[tuple[ClusterNode, list[int]]]:
        manager = self.client.nodes_manager
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        for position in positions:
            key = command_key(args[position])
            nodes = manager.get_nodes_by_server_type("primary") if key is None else [manager.get_node_from_slot(_slot(key))]
            for node in nodes:
                groups.setdefault(node.name, (node, []))[1].append(position)
        return list(groups.values())

    async def _send(self, node: ClusterNode, args: list[tuple[Any, ...]]) -> Replies:
        connection = self._connections.get(node.name)
        if connection is None:
            connection = node.connection_class(**{**node.connection_kwargs, "protocol": 2})
            self._connections[node.name] = connection
        try:
            await connection.connect()
            return await _pipeline_confirmed(
                connection, args, self.wait, node.name, lambda: self._barrier_key(node, args)
            )
        except asyncio.CancelledError:
            await asyncio.shield(self._drop(node))
            raise

    def _barrier_key(self, node: ClusterNode, args: list[tuple[Any, ...]]) -> bytes:
        """A barrier key in the slot of the first keyed command sent to `node` (so of a slot it serves).

        Should that slot have moved meanwhile, the barrier is refused with the
        write, and the other writes of the round trip are answered as unconfirmed.
        """
        slot = next((_slot(key) for a in args if (key := command_key(a)) is not None), None)
        return barrier_key(slot if slot is not None else self._served_slots()[node.name])

    def _served_slots(self) -> dict[str, int]:
        """A slot each master serves, by node name, from the slot map last read."""
        served: dict[str, int] = {}
        for slot, nodes in self.client.nodes_manager.slots_cache.items():
            if nodes:
                served.setdefault(nodes[0].name, slot)
        return served

    async def barriers(self) -> list[tuple[Any, ...]]:
        """One barrier per master (`Link.barriers`), each on a key of a slot it serves."""
        if not self.client.nodes_manager.slots_cache:
            await read_slots(self.client)
        return [barrier(barrier_key(slot)) for slot in self._served_slots().values()]

    async def _drop(self, node: ClusterNode) -> None:
        connection = self._connections.pop(node.name, None)
        if connection is not None:
            await _disconnect(connection)

    async def close(self) -> None:
        """Drop every master's connection."""
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await _disconnect(connection)


async def _disconnect(connection: AbstractConnection) -> None:
    try:
        await connection.disconnect()
    except Exception:  # noqa: BLE001 - it is being thrown away
        pass


def link_for(client: AsyncRedis, wait: ReplicaWait | None = None) -> Link:
    """The link that suits `client`: per node for a cluster client, one connection otherwise."""
    if isinstance(client, redis.asyncio.RedisCluster):
        return ClusterLink(client, wait)
    return ServerLink(client, wait)


__all__ = [
    "ClusterLink", "Link", "ReplicaWait", "ServerLink", "barrier", "barrier_key", "command_key", "confirmation",
    "link_for", "writes",
]  # fmt: skip
