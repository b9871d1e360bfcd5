"""One round trip for a redis-py pipeline of a single server, without redis-py's per-pipeline bookkeeping.

Every write of a runner is a pipeline (its dirty mark, the script, the
effects it carries along), so a round trip's client CPU counts. Measured on
a 3-command pipeline against a local Valkey, redis-py 8's
`Pipeline.execute` took about 140 µs of CPU where sending the same bytes and
reading the replies on one of its connections took 74 µs: the rest is
operation metrics, HIMPORT preparation, argument deprecation checks, Python
packing and per-reply option handling, none of which a Dolmen pipeline
uses. `execute` sends the commands queued in a redis-py `Pipeline` (not a
transaction, not a cluster's) packed by hiredis on a connection of the
client's own pool, reads every reply, and applies redis-py's response
callbacks to the commands that have one, so its results are what
`Pipeline.execute(raise_on_error=False)` returns: error replies in place.
A connection error is retried as redis-py retries it (the client's `Retry`,
the connection dropped first), so re-sending stays as safe as the writes'
ids make it (lua/_prelude.lua).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.client import Pipeline as RedisPipeline
from redis.connection import AbstractConnection
from redis.exceptions import ResponseError

# Commands whose replies Dolmen takes raw: no redis-py callback is looked up for them.
_RAW = frozenset({"EVALSHA", "EVAL"})


def execute(pipe: RedisPipeline, connection: AbstractConnection | None = None) -> list[Any]:
    """The replies of the commands queued in `pipe`, in order, error replies in place; `pipe` is reset.

    `connection`: one of the pool's connections that the caller holds for
    its own round trips, one at a time (`HeldConnection`); by default one is
    taken from the pool and handed back.

    Raises redis-py's `ConnectionError` or `TimeoutError` when the server
    could not be reached after the client's retries (callers translate them,
    `map_redis_errors`).
    """
    stack = pipe.command_stack
    if not stack:
        return []
    try:
        if connection is not None:
            return _on(connection, pipe, stack)
        pool = pipe.connection_pool
        taken = pool.get_connection()
        try:
            return _on(taken, pipe, stack)
        finally:
            pool.release(taken)
    finally:
        pipe.reset()


def _on(connection: AbstractConnection, pipe: RedisPipeline, stack: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> list[Any]:
    try:
        return connection.retry.call_with_retry(
            lambda: _round_trip(pipe, connection, stack), lambda _error: connection.disconnect()
        )
    except BaseException:
        # Replies may be left unread on it: never hand it back (or send on it again) connected.
        connection.disconnect()
        raise


class HeldConnection:
    """One connection of a single server's pool, kept by a caller whose round trips never overlap (the group
    commit's leader): taking a connection from redis-py 8's pool and handing it back costs about 6 µs of CPU
    per round trip (metrics, a readiness poll of the socket, fork checks).

    `get()` is the connection (taken at the first call; None for a cluster's client, which has no such pool);
    a connection dropped after an error connects again at its next command. `close()` hands it back.
    """

    def __init__(self, client: Any) -> None:
        self._pool = getattr(client, "connection_pool", None)
        self._connection: AbstractConnection | None = None

    def get(self) -> AbstractConnection | None:
        if self._connection is None and self._pool is not None:
            self._connection = self._pool.get_connection()
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._pool is not None:
            self._pool.release(connection)


def execute_any(pipe: Any, connection: AbstractConnection | None = None) -> list[Any]:
    """`execute` for a single server's pipeline (on `connection` when given); redis-py's own
    `execute(raise_on_error=False)` for a cluster's."""
    if type(pipe) is RedisPipeline:
        return execute(pipe, connection)
    return pipe.execute(raise_on_error=False)


def _round_trip(pipe: RedisPipeline, connection: AbstractConnection, stack: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> list[Any]:
    connection.send_packed_command(packed([args for args, _ in stack], connection.pack_commands))
    callbacks = pipe.response_callbacks
    replies: list[Any] = []
    for args, options in stack:
        try:
            reply = connection.read_response(disable_decoding=NEVER_DECODE in options)
        except ResponseError as exc:
            replies.append(options.get(EMPTY_RESPONSE, exc))
            continue
        name = args[0]
        if name not in _RAW and name in callbacks:
            # As redis-py's `parse_response`: these options are for it, not for the callback.
            kept = {k: v for k, v in options.items() if k not in (NEVER_DECODE, EMPTY_RESPONSE, "keys")}
            reply = callbacks[name](reply, **kept)
        replies.append(reply)
    return replies


def packed(commands: Sequence[tuple[Any, ...]], fallback: Callable[[Sequence[tuple[Any, ...]]], list[bytes]]) -> list[bytes]:
    """`commands` in RESP, packed by hiredis in C; by `fallback` (a redis-py connection's `pack_commands`) when an
    argument is of a type hiredis does not take. redis-py's asyncio connections pack in Python, at about 3× the CPU."""
    try:
        return [b"".join(hiredis.pack_command(_split_name(args)) for args in commands)]
    except TypeError:
        return fallback(commands)


def _split_name(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """`("SCRIPT LOAD", x)` as `("SCRIPT", "LOAD", x)`: a command name of two words is two arguments."""
    name = args[0]
    if isinstance(name, str) and " " in name:
        return (*name.split(), *args[1:])
    return args
