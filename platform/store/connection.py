"""Connections to Redis/Valkey, and translation of redis-py's exceptions.

Nothing above `store/` sees a redis exception: adapters wrap their calls in
`map_redis_errors()`, which turns them into `StoreError`s naming the server.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import ExponentialWithJitterBackoff
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.retry import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ClusterDownError, MovedError, OutOfMemoryError, RedisClusterException, RedisError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..backoff import Backoff
from ..errors import ConfigError, StoreError, StoreFullError, StoreUnavailableError
from .access import redacted, refusal, tls_hint
from .urls import host_port, seed_urls, tcp_options, where


# A synchronous client of one server or of a cluster (see `connect`).
Redis: TypeAlias = "redis.Redis | redis.RedisCluster"
# The asyncio client of one server or of a cluster (see `connect_async`).
AsyncRedis: TypeAlias = "redis.asyncio.Redis | redis.asyncio.RedisCluster"

# The store's handle: what a process holds to reach the store (`connect`, `connect_async`) and hands to the
# store's functions and classes. Code above `store/` names it only by these names (tests/test_layers.py checks
# it) and leaves its methods to the store: they are redis-py's, which only `store/` may use.
StoreClient: TypeAlias = Redis
AsyncStoreClient: TypeAlias = AsyncRedis

# Blocking reads (XREAD/XREADGROUP BLOCK) never wait longer than this, so a
# dead server is still noticed within SOCKET_TIMEOUT_S.
MAX_BLOCK_MS = 5_000
SOCKET_TIMEOUT_S = 30.0
# Pauses between tries while a cluster fails over (within FAILOVER_S), and while
# waiting for a server to answer at all (within the caller's timeout).
FAILOVER_BACKOFF = Backoff(initial=0.1, cap=1.0)
REACH_BACKOFF = Backoff(initial=0.1, cap=2.0)


def _retry() -> Retry:
    """Re-send a command (or a whole pipeline) whose connection failed, a few times.

    A re-sent write may already have run: every Dolmen write carries a write
    id and is answered from the state when it is a repeat (see lua/_prelude.lua).
    """
    return Retry(
        ExponentialWithJitterBackoff(base=0.02, cap=0.5),
        3,
        supported_errors=(RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError),
    )


def connect(
    url: str, *, max_connections: int = 64, socket_timeout_s: float = SOCKET_TIMEOUT_S, connect_timeout_s: float = 5.0
) -> Redis:
    """A synchronous client (bytes responses) for `url`: a cluster client when `url` names a cluster node.

    `url` may name several nodes of one cluster, `redis://HOST:PORT,HOST:PORT`
    (see `seed_urls`): the first that answers tells the others. A user and
    password, `rediss://` and TLS options in `url` go to every connection (see
    `access`). `max_connections` is per server (per node of a cluster). A server
    that cannot be reached yet gets a plain client, which fails on its first
    command with the usual "cannot reach" error; one that refuses this process
    (its user, password or certificate) raises `StoreAccessError` here. A
    malformed `url` raises `ConfigError`. Timeouts are in seconds.
    """
    options: dict[str, Any] = dict(
        socket_timeout=socket_timeout_s, socket_connect_timeout=connect_timeout_s, health_check_interval=30,
        **tcp_options(url),
    )  # fmt: skip
    try:
        seeds = seed_urls(url)
        seed = _cluster_seed(seeds, connect_timeout_s)
        if seed is not None:
            others = [redis.cluster.ClusterNode(*host_port(other)) for other in seeds if other != seed]
            return _Cluster.from_url(
                seed, startup_nodes=others, max_connections=max_connections, retry=_cluster_retry(), **options
            )
        return redis.Redis.from_url(seeds[0], max_connections=max_connections, retry=_retry(), **options)
    except ValueError as exc:
        raise ConfigError(
            f"'{redacted(url)}' is not a Redis URL ({exc}); use redis://[USER:PASSWORD@]HOST:PORT[/DB], "
            "with the user and password URL-encoded (urllib.parse.quote(PASSWORD, safe=''))"
        ) from None


def _cluster_seed(seeds: list[str], timeout_s: float) -> str | None:
    """The first of `seeds` that answers as a cluster node; None if none does (or none answers).

    Raises `StoreAccessError` at the first seed that refuses this process:
    the others get the same user, password and TLS settings.
    """
    return next((seed for seed in seeds if is_cluster(seed, timeout_s)), None)


def known_keys(args: tuple[Any, ...]) -> list[Any] | None:
    """The keys of a script call or a stream read, read from its arguments; None for other commands.

    redis-py 8.1's cluster client asks the server (COMMAND GETKEYS, a round
    trip to one node) for the keys of every command without a fixed key
    position: once per EVALSHA in a pipeline, twice per XREADGROUP. These are
    most of what a runner sends, so that node got a third more commands than
    the others (benchmarks/cluster.py) and every such command a round trip
    more. Their syntax puts the keys where this reads them.
    """
    name = args[0].upper() if isinstance(args[0], str) else bytes(args[0]).decode().upper()
    if name in ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO"):
        return list(args[3 : 3 + int(args[2])])
    if name in ("XREADGROUP", "XREAD"):
        words = [a.upper() if isinstance(a, str) else a.upper().decode() if isinstance(a, bytes) else "" for a in args]
        if "STREAMS" in words:
            rest = args[words.index("STREAMS") + 1 :]
            return list(rest[: len(rest) // 2])
    return None


class _Cluster(redis.RedisCluster):
    """redis-py's cluster client; its pipelines also get through a failover.

    redis-py 8.1 reads the slot map anew after a connection error in a single
    command, but a pipeline that met a dead master (the node --redis named,
    say) kept failing after a replica had taken over its slots, and so did a
    command sent to every master (tests/cluster/test_failover.py). Here such a
    pipeline or command reads the slot map and is sent again, for up to
    `FAILOVER_S`: as with a single server's re-sent pipeline, Dolmen's writes
    carry write ids, so a repeat is harmless.
    """

    FAILOVER_S = 15.0
    _REFRESH_EVERY_S = 0.2

    def _get_command_keys(self, *args: Any) -> Any:
        keys = known_keys(args)
        return keys if keys is not None else super()._get_command_keys(*args)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        ask_server = pipe._get_command_keys

        def command_keys(*args: Any) -> Any:
            keys = known_keys(args)
            return keys if keys is not None else ask_server(*args)

        pipe._get_command_keys = command_keys
        send = pipe.execute

        def execute(raise_on_error: bool = True) -> Any:
            strategy = getattr(pipe, "_execution_strategy", None)
            stack = list(getattr(strategy, "_command_queue", []))  # redis-py 8: the pipeline strategy's queue
            try:
                return send(raise_on_error)
            except (RedisConnectionError, RedisTimeoutError, ClusterDownError):
                if not stack:
                    self.refresh_slots()
                    raise
            return self._send_again(pipe, stack, raise_on_error)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.FAILOVER_S
        pauses = FAILOVER_BACKOFF.delays()
        pause = next(pauses)
        while True:
            try:
                return super().execute_command(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError, ClusterDownError) as exc:
                # A command for every master (SCRIPT LOAD, say) keeps its list of nodes across redis-py's own retries.
                if time.monotonic() + pause > deadline or _refused(exc):
                    raise
                self.refresh_slots()
            time.sleep(pause)
            pause = next(pauses)

    def _send_again(self, pipe: Any, stack: list[Any], raise_on_error: bool) -> Any:
        deadline = time.monotonic() + self.FAILOVER_S
        pauses = FAILOVER_BACKOFF.delays()
        pause = next(pauses)
        while True:
            self.refresh_slots()
            for command in stack:
                command.result, command.node, command.asking = None, None, False
            try:
                return pipe.send_cluster_commands(stack, raise_on_error=raise_on_error)
            except (RedisConnectionError, RedisTimeoutError, ClusterDownError) as exc:
                if time.monotonic() + pause > deadline or _refused(exc):
                    raise
            finally:
                pipe.reset()
            time.sleep(pause)
            pause = next(pauses)

    def refresh_slots(self) -> None:
        """Read which node serves which slots (at most every `_REFRESH_EVERY_S`); quiet if no node answers.

        A node that refuses this process (its password, its certificate) raises:
        the callers' retries wait for a failover, which would not end that.
        """
        now = time.monotonic()
        if now - getattr(self, "_refreshed_at", 0.0) < self._REFRESH_EVERY_S:
            return
        self._refreshed_at = now
        try:
            self.nodes_manager.initialize()
        except (RedisError, RedisClusterException) as exc:  # RedisClusterException: no node answered
            if _refused(exc):
                raise


def _refused(exc: BaseException) -> bool:
    """Whether the server refused this process (see `access.refusal`): waiting for a failover would not help."""
    return refusal(exc, "") is not None


def is_cluster(url: str, timeout_s: float = 5.0) -> bool:
    """Whether the server at `url` runs in cluster mode (`cluster_enabled:1`); False when it cannot be reached.

    Raises `StoreAccessError` when it refuses this process: taken for a single
    server, a cluster node would fail every other slot's command with MOVED,
    and the user would be told of a cluster instead of their password.
    """
    probe = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except RedisError as exc:
        refused = refusal(exc, where(url))
        if refused is not None:
            raise refused from None
        return False
    finally:
        probe.close()


def _cluster_retry() -> Retry:
    """As `_retry`, for a cluster client: it also re-reads the slot map after a connection error."""
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 6)


def close(client: Redis) -> None:
    """Close the handle's connections (a process's last use of it)."""
    client.close()


async def aclose(client: AsyncRedis) -> None:
    """Close the asyncio handle's connections (a process's last use of it)."""
    await client.aclose()


def ping(client: Redis) -> None:
    """Ask the server whether it answers (PING); raises `StoreError` saying why not when it does not."""
    with map_redis_errors():
        client.ping()


def wait_until_reachable(client: Redis, timeout_s: float = 30.0) -> None:
    """Block until the server answers PING (it may be starting or loading its data).

    Raises `StoreUnavailableError` naming the server after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    pauses = REACH_BACKOFF.delays()
    pause = next(pauses)
    while True:
        try:
            with map_redis_errors(describe(client)):
                client.ping()
            return
        except StoreUnavailableError:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = next(pauses)


def wait_for_store(url: str, timeout_s: float = 30.0, *, probe_timeout_s: float = 2.0) -> None:
    """Block until one of the nodes `url` names answers (any of `seed_urls`), trying each in turn.

    A process connects only then: `connect` tells a cluster from a single
    server by asking a node, so a client made while every node was down
    would be a single server's, and fail with MOVED once the cluster is up;
    and waiting on the first node alone would wait for ever if another came
    back first. Raises `StoreUnavailableError` naming every node after
    `timeout_s`, `StoreAccessError` when a node refuses this process.
    """
    seeds = seed_urls(url)
    deadline = time.monotonic() + timeout_s
    pauses = REACH_BACKOFF.delays()
    pause = next(pauses)
    errors: dict[str, str] = {}
    while True:
        for seed in seeds:
            probe = redis.Redis.from_url(seed, socket_timeout=probe_timeout_s, socket_connect_timeout=probe_timeout_s)
            try:
                probe.ping()
                return
            except RedisError as exc:
                # First: redis-py's AuthenticationError is a ConnectionError, and a refusal is no outage to wait out.
                refused = refusal(exc, where(seed))
                if refused is not None:
                    raise refused from None
                if not isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
                    return  # it answers (LOADING, say): the caller's own wait covers the rest
                errors[seed] = str(exc)
            finally:
                probe.close()
        if time.monotonic() + pause > deadline:
            tried = "; ".join(f"{redacted(seed)}: {error}" for seed, error in errors.items())
            raise StoreUnavailableError(f"no node of {redacted(url)} answers after {timeout_s:.0f}s ({tried}); start Redis/Valkey or fix --redis")
        time.sleep(pause)
        pause = next(pauses)


def connect_async(url: str, *, max_connections: int = 256) -> AsyncRedis:
    """An asyncio client (bytes responses) for `url`, as `connect`: a cluster client when it names cluster nodes.

    The cluster check is one blocking round trip, made once when a process
    starts. Raises as `connect` does: `ConfigError` for a malformed `url`,
    `StoreAccessError` when a node refuses this process.
    """
    try:
        seeds = seed_urls(url)
        seed = _cluster_seed(seeds, 5.0)
        if seed is not None:
            others = [redis.asyncio.cluster.ClusterNode(*host_port(other)) for other in seeds if other != seed]
            return redis.asyncio.RedisCluster.from_url(
                seed, startup_nodes=others, max_connections=max_connections, socket_keepalive=True,
                socket_timeout=SOCKET_TIMEOUT_S, retry=AsyncRetry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 6),
            )  # fmt: skip
        return redis.asyncio.Redis.from_url(
            seeds[0], max_connections=max_connections, socket_timeout=SOCKET_TIMEOUT_S, **tcp_options(seeds[0]),
            retry=AsyncRetry(ExponentialWithJitterBackoff(base=0.02, cap=0.5), 3),
        )
    except ValueError as exc:
        raise ConfigError(
            f"'{redacted(url)}' is not a Redis URL ({exc}); use redis://[USER:PASSWORD@]HOST:PORT[/DB], "
            "with the user and password URL-encoded (urllib.parse.quote(PASSWORD, safe=''))"
        ) from None


def describe(client: Redis | AsyncRedis) -> str:
    """The server a client talks to, for messages: `HOST:PORT`, `unix:PATH`, or `the cluster reached through HOST:PORT`."""
    if isinstance(client, (redis.RedisCluster, redis.asyncio.RedisCluster)):
        node = client.get_default_node()
        return f"the cluster reached through {node.host}:{node.port}" if node is not None else "the cluster"
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


@contextmanager
def map_redis_errors(where: str = "Redis") -> Iterator[None]:
    """Translate redis-py exceptions raised inside the block into `StoreError` or a subclass (see `store_error`).

    `where` names the server in the messages (e.g. `describe(client)`).
    """
    try:
        yield
    except (RedisError, RedisClusterException) as exc:
        raise store_error(exc, where) from None


def store_error(exc: RedisError | RedisClusterException, where: str = "Redis") -> StoreError:
    """The `StoreError` that tells a user what `exc`, from the server at `where`, means and what to do."""
    # First: a refused password or certificate comes as a ConnectionError, a refused command as a ResponseError.
    refused = refusal(exc, where)
    if refused is not None:
        return refused
    if isinstance(exc, RedisClusterException):
        # Not a RedisError: what redis-py's cluster client raises when no node it knows tells it the slot map.
        return StoreUnavailableError(
            f"cannot reach {where} ({exc}); check that its nodes run (`platform status`) or pass the right --redis URL"
        )
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return StoreUnavailableError(
            f"cannot reach {where} ({exc}); check that it runs (`platform status`) or pass the right --redis URL"
            f"{tls_hint(exc)}"
        )
    if isinstance(exc, OutOfMemoryError):
        # Valkey's "OOM command not allowed when used memory > 'maxmemory'", also
        # from inside a script, which it refuses before the script's first write.
        return StoreFullError(full_message(where))
    if isinstance(exc, MovedError):
        return StoreError(
            f"{where} is a node of a Redis Cluster (it answered MOVED {exc}), which this process took for a "
            "single server: the node did not answer when the process started. Restart the process; name "
            "several nodes to start from (--redis redis://HOST:PORT,HOST:PORT) so that one being down does not matter"
        )
    if isinstance(exc, ResponseError):
        return StoreError(f"{where} refused a command: {exc}")
    return StoreError(f"{where} failed: {exc}")


def full_message(where: str = "Redis") -> str:
    """What a write refused for lack of memory tells the user: nothing was stored, and how to make room."""
    return (
        f"{where} is full: its memory use reached maxmemory, so it refused this write and nothing of it was "
        "stored. Make room, then try again: remove finished executions (`platform executions purge`, or a "
        "shorter retention), or raise the limit (`platform up --maxmemory SIZE` for the embedded Valkey, "
        "CONFIG SET maxmemory on your own server); `platform status` shows the memory use"
    )


async def dedicated_connection(client: AsyncRedis) -> AbstractConnection:
    """A new connection to `client`'s server outside its pool, speaking RESP2, connected.

    For a process's long-lived single-purpose links (the finish subscription,
    the batched pipeline): with RESP2, pub/sub messages and replies come back
    as plain values rather than through redis-py's RESP3 push handlers. For a
    cluster client, a connection to one of its masters (a cluster passes
    every PUBLISH to all nodes), a random one each call: a subscriber that
    lost its node likely subscribes again on another.
    """
    if isinstance(client, redis.asyncio.RedisCluster):
        # Read the nodes anew: this is how a subscriber comes back after its master died and a replica took over.
        await read_slots(client)
        node = random.choice(client.get_primaries())
        connection = node.connection_class(**{**node.connection_kwargs, "protocol": 2})
    else:
        pool = client.connection_pool
        connection = pool.connection_class(**{**pool.connection_kwargs, "protocol": 2})
    await connection.connect()
    return connection


async def read_slots(client: redis.asyncio.RedisCluster) -> None:
    """Read which node serves which slots.

    The client is initialized first: redis-py 8.1's asyncio cluster client
    whose node map was read before it was initialized fails every later
    command ("'AsyncCommandsParser' object has no attribute 'node'").
    """
    if getattr(client, "_initialize", True):
        await client.initialize()
    else:
        await client.nodes_manager.initialize()


def translated(error: Exception) -> BaseException:
    """A redis-py error from one reply (of a pipeline run without raising) as the `StoreError` `map_redis_errors` makes of it."""
    try:
        with map_redis_errors():
            raise error
    except BaseException as exc:  # noqa: BLE001 - returned, not swallowed
        return exc
    return error  # pragma: no cover - the block always raises
