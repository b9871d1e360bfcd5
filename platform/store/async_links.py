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
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence
from typing import Any, Protocol

import redis.asyncio
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import StoreError, StoreUnavailableError
from .connection import SOCKET_TIMEOUT_S, AsyncRedis, dedicated_connection, describe, read_slots

RETRIES = 3
Replies = list[Any]
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
# Replies that mean "ask again, elsewhere or later" on a cluster.
_REROUTE = (MovedError, AskError, TryAgainError, ClusterDownError)


class Link(Protocol):
    """A transport for raw pipelined round trips."""

    async def round_trip(self, args: Sequence[tuple[Any, ...]]) -> Replies: ...

    async def close(self) -> None: ...


async def _pipeline(connection: AbstractConnection, args: Sequence[tuple[Any, ...]]) -> Replies:
    """Send `args` as one pipeline on `connection` and read every reply (RESP2, raw)."""
    async with asyncio.timeout(SOCKET_TIMEOUT_S):
        await connection.send_packed_command(connection.pack_commands(args), check_health=False)
        replies: Replies = []
        for _ in args:
            try:
                replies.append(await connection.read_response(timeout=math.inf))
            except ResponseError as exc:
                replies.append(exc)
    return replies


def _unavailable(where: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"cannot reach Redis at {where} ({exc}); check that it runs (`platform status`) or pass the right --redis URL"
    )


async def _backoff(pause: float) -> float:
    await asyncio.sleep(pause * (0.5 + random.random()))
    return min(pause * 2, 0.5)


class ServerLink:
    """One dedicated connection to one server, re-opened (and the round trip re-sent) after a connection error."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._connection: AbstractConnection | None = None

    async def round_trip(self, args: Sequence[tuple[Any, ...]]) -> Replies:
        pause = 0.02
        for attempt in range(RETRIES + 1):
            try:
                if self._connection is None:
                    self._connection = await dedicated_connection(self.client)
                return await _pipeline(self._connection, args)
            except asyncio.CancelledError:
                # Replies may be left unread on it: never reuse it.
                await asyncio.shield(self.close())
                raise
            except _CONNECTION_ERRORS as exc:
                await self.close()
                if attempt == RETRIES:
                    raise _unavailable(describe(self.client), exc) from None
                pause = await _backoff(pause)
            except RedisError as exc:
                await self.close()
                raise StoreError(f"Redis failed: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await _disconnect(connection)


def command_key(args: tuple[Any, ...]) -> Any:
    """The key that routes a command: a script call's first key, another command's first argument; None if keyless."""
    name = args[0].upper() if isinstance(args[0], str) else args[0].decode().upper()
    if name in ("EVALSHA", "EVAL"):
        return args[3] if int(args[2]) > 0 else None
    if name in ("SCRIPT", "PING") or len(args) < 2:
        return None
    return args[1]


def _slot(key: Any) -> int:
    return key_slot(key if isinstance(key, bytes) else str(key).encode())


class ClusterLink:
    """One dedicated connection per master of a Redis Cluster; each command goes to its slot's master."""

    def __init__(self, client: redis.asyncio.RedisCluster) -> None:
        self.client = client
        self._connections: dict[str, AbstractConnection] = {}
        self._fresh = False  # whether the slot map was read since the last reroute

    async def round_trip(self, args: Sequence[tuple[Any, ...]]) -> Replies:
        replies: list[Any] = [None] * len(args)
        answered = [False] * len(args)
        todo = list(range(len(args)))
        pause = 0.02
        last: BaseException | None = None
        for attempt in range(RETRIES + 2):
            try:
                if not self._fresh:
                    await read_slots(self.client)
                    self._fresh = True
                groups = self._route(args, todo)
            except asyncio.CancelledError:
                raise
            except (RedisError, *_CONNECTION_ERRORS) as exc:
                last = exc
                self._fresh = False
                pause = await _backoff(pause)
                continue
            outcomes = await asyncio.gather(
                *(self._send(node, [args[p] for p in positions]) for node, positions in groups), return_exceptions=True
            )
            again: set[int] = set()
            for (node, positions), outcome in zip(groups, outcomes):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                if isinstance(outcome, BaseException):
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
                pause = await _backoff(pause)
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
            return await _pipeline(connection, args)
        except asyncio.CancelledError:
            await asyncio.shield(self._drop(node))
            raise

    async def _drop(self, node: ClusterNode) -> None:
        connection = self._connections.pop(node.name, None)
        if connection is not None:
            await _disconnect(connection)

    async def close(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await _disconnect(connection)


async def _disconnect(connection: AbstractConnection) -> None:
    try:
        await connection.disconnect()
    except Exception:  # noqa: BLE001 - it is being thrown away
        pass


def link_for(client: AsyncRedis) -> Link:
    """The link that suits `client`: per node for a cluster client, one connection otherwise."""
    if isinstance(client, redis.asyncio.RedisCluster):
        return ClusterLink(client)
    return ServerLink(client)


__all__ = ["ClusterLink", "Link", "ServerLink", "command_key", "link_for"]
