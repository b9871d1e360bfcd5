"""Command `status`: what runs, judged from `platform.json`, Redis, heartbeats and the gateway.

The judgement (`build_status`) is pure; the probes around it do the I/O.
`platform up` uses the same probes to wait until the platform is ready.
"""
from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog

from ..config import ENV_REDIS, PlatformFile, env_int, no_platform
from ..errors import ConfigError, DolmenError, StoreError
from ..store.heartbeats import STALE_AFTER_S, ProcessInfo, forget_processes, read_processes
from ..store.access import redacted
from ..store.connection import StoreClient, close, connect, ping
from ..store.memory import StoreMemory, read_memory
from ..store import shards as sharding
from ..store.retention import RetentionView, read_retention_view
from ..store.shards import Shards
from ..store.topology import ClusterView, read_cluster, replica_shortfall, replicas_of_masters
from ..wit.limits import MAX_VALUE_ENV
from .shared import CliContext, echo, emit_json, emit_table, pass_ctx


T = TypeVar("T")
log = structlog.get_logger("dolmen.status")


# ---------------------------------------------------------------- status, judged purely


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One process of the heartbeat hash, as `platform status` shows it.

    `last_seen` is its last heartbeat (s since the epoch), `age_s` how long ago; `supervised_as` the name
    `platform up` started it under on this host (None: started elsewhere).
    """

    kind: str
    id: str
    pid: int
    host: str
    last_seen: float
    age_s: float
    healthy: bool
    supervised_as: str | None


@dataclass(frozen=True, slots=True)
class PlatformStatus:
    """Everything `platform status` reports; `problems` is empty when all is well."""

    data_dir: str
    supervisor_pid: int | None
    redis_url: str
    redis_error: str | None
    embedded_valkey: bool
    gateway_url: str | None
    gateway_error: str | None
    supervised: dict[str, int]
    processes: tuple[ProcessRow, ...]
    problems: tuple[str, ...]
    # Redis's memory use (None when it does not answer).
    memory: StoreMemory | None = None
    # Finished trees kept until their retention passes (None when Redis does not answer).
    retention: RetentionView | None = None
    # A cluster's masters, replicas and failing nodes (None for a single server, or when no node answers).
    cluster: ClusterView | None = None
    # How many shards the queue, timer and index keys have (None when Redis does not answer).
    shards: int | None = None

    def to_json(self) -> dict[str, Any]:
        """`platform status --json`: `healthy`, `problems`, and `supervisor`, `redis`, `gateway`, `memory`,
        `retention`, `supervised` and `processes` as observed (`last_seen` s since the epoch, `age_s` s)."""
        return {
            "healthy": not self.problems,
            "problems": list(self.problems),
            "data_dir": self.data_dir,
            "supervisor": {"pid": self.supervisor_pid, "running": self.supervisor_pid is not None},
            "redis": {
                "url": self.redis_url,
                "ok": self.redis_error is None,
                "error": self.redis_error,
                "embedded": self.embedded_valkey,
                "pid": self.supervised.get("valkey"),
                "cluster": self.cluster.to_json() if self.cluster is not None else None,
                "shards": self.shards,
            },
            "gateway": {"url": self.gateway_url, "ok": self.gateway_error is None, "error": self.gateway_error},
            "memory": self.memory.to_json() if self.memory is not None else None,
            "retention": self.retention.to_json() if self.retention is not None else None,
            "supervised": dict(self.supervised),
            "processes": [
                {
                    "kind": p.kind,
                    "id": p.id,
                    "pid": p.pid,
                    "host": p.host,
                    "last_seen": p.last_seen,
                    "age_s": round(p.age_s, 3),
                    "healthy": p.healthy,
                    "supervised_as": p.supervised_as,
                }
                for p in self.processes
            ],
        }


def build_status(
    *,
    data_dir: Path,
    running: PlatformFile | None,
    redis_url: str,
    redis_error: str | None,
    gateway_url: str | None,
    gateway_error: str | None,
    beats: Sequence[ProcessInfo],
    now: float,
    hostname: str,
    memory: StoreMemory | None = None,
    retention: RetentionView | None = None,
    cluster: ClusterView | None = None,
    shards: int | None = None,
    shards_wanted: int = 0,
    replicas_of: tuple[tuple[str, int], ...] | None = None,
) -> PlatformStatus:
    """Judge what was observed: which process is stale, which supervised one is missing, whether Redis is full.

    `now` and the beats' `last_seen` are s since the epoch; a beat older than `STALE_AFTER_S` is stale.
    """
    supervised = dict(running.processes) if running else {}
    by_pid = {pid: name for name, pid in supervised.items()}
    rows: list[ProcessRow] = []
    problems: list[str] = []
    if redis_error is not None:
        problems.append(f"Redis {redis_url} does not answer: {redis_error}")
    if gateway_url is not None and gateway_error is not None:
        problems.append(f"gateway {gateway_url} is not healthy: {gateway_error}")
    if memory is not None:
        problems += memory.problems()
    if cluster is not None:
        problems += cluster.problems()
    if shards is not None and shards_wanted and shards_wanted != shards:
        problems.append(
            f"DOLMEN_SHARDS={shards_wanted} here, but the store has {shards} shards (fixed at its first use): "
            f"processes started with it stop at once; unset it or set it to {shards}"
        )
    for beat in beats:
        age = max(0.0, now - beat.last_seen)
        healthy = age < STALE_AFTER_S
        wanted = int(beat.details.get("wait_replicas") or 0)
        if healthy and wanted and replicas_of is not None:
            problems += replica_shortfall(wanted, replicas_of, f"gateway {beat.id}")
        mine = by_pid.get(beat.pid) if beat.host == hostname else None
        rows.append(ProcessRow(beat.kind, beat.id, beat.pid, beat.host, beat.last_seen, age, healthy, mine))
        if not healthy:
            problems.append(f"{beat.kind} {beat.id} has not reported for {age:.0f}s (stale: is it still running?)")
    if redis_error is None:
        reporting = {r.supervised_as for r in rows if r.healthy and r.supervised_as}
        for name, pid in supervised.items():
            if name != "valkey" and name not in reporting:
                problems.append(f"{name} (pid {pid}) is not reporting: it may be restarting, see the `platform up` log")
    return PlatformStatus(
        data_dir=str(data_dir),
        supervisor_pid=running.supervisor_pid if running else None,
        redis_url=redis_url,
        redis_error=redis_error,
        embedded_valkey=running.embedded_valkey if running else False,
        gateway_url=gateway_url,
        gateway_error=gateway_error,
        supervised=supervised,
        processes=tuple(rows),
        problems=tuple(problems),
        memory=memory,
        retention=retention,
        cluster=cluster,
        shards=shards,
    )


# ---------------------------------------------------------------- probes (I/O)


def probe_client(url: str) -> StoreClient:
    """A client with short timeouts (2 s per command, 1 s to connect), for health probes that must not hang (a cluster
    client for a cluster node). Raises `ConfigError` for a URL it cannot use (malformed, or refused by the store)."""
    try:
        return connect(url, socket_timeout_s=2.0, connect_timeout_s=1.0)
    except StoreError as exc:
        raise ConfigError(exc.message) from None


def probe_redis(client: StoreClient) -> str | None:
    """None if Redis answers PING, else why not."""
    try:
        ping(client)
    except DolmenError as exc:
        return str(exc)
    return None


def probe_memory(client: StoreClient) -> StoreMemory | None:
    """Redis's memory use, or None if it cannot tell (a server that forbids INFO).

    Full counts room for one write of the largest value (`DOLMEN_MAX_VALUE_BYTES`).
    """
    largest = env_int(MAX_VALUE_ENV)
    return _optional(lambda c: read_memory(c, largest), client, "Redis's memory use")


def probe_retention(client: StoreClient, shards: int) -> RetentionView | None:
    """What retention keeps (in the store's `shards` shards), or None if Redis does not answer."""
    return _optional(lambda c: read_retention_view(c, Shards(shards)), client, "what retention keeps")


def _optional(read: Callable[[StoreClient], T], client: StoreClient, what: str) -> T | None:
    """`read(client)`, or None (logged) when Redis cannot tell: status shows what it can."""
    try:
        return read(client)
    except DolmenError as exc:
        log.debug(f"could not read {what}", error=str(exc))
        return None


def probe_gateway(url: str) -> str | None:
    """None if GET {url}/healthz answers 200, else why not."""
    # Loopback must not go through an HTTP proxy configured in the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/healthz", timeout=2.0) as response:
            return None if response.status == 200 else f"/healthz answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"/healthz answered {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"cannot reach {url} ({reason})"


def forget_heartbeats(client: StoreClient, pids: set[int]) -> None:
    """Drop the heartbeats of dead processes of this host, so status does not report them stale."""
    hostname = socket.gethostname()
    try:
        for proc in read_processes(client):
            if proc.host == hostname and proc.pid in pids:
                forget_processes(client, [proc.id])
    except DolmenError as exc:
        log.debug("could not forget heartbeats", pids=sorted(pids), error=str(exc))


# ---------------------------------------------------------------- platform status


def collect_status(ctx: CliContext) -> PlatformStatus:
    """Look at the platform of this data directory (or at --redis), or raise `NotFoundError`.

    Raises `ConfigError` for a store URL it cannot use; a store that does not answer is reported, not raised.
    """
    data_dir = ctx.data_dir
    found = PlatformFile.read(data_dir)
    running = found if found is not None and found.is_live() else None
    explicit = ctx.redis_flag or os.environ.get(ENV_REDIS)
    if running is None and not explicit:
        raise no_platform(data_dir)
    redis_url = explicit or (running.redis_url if running else "")
    gateway_url = ctx.gateway_url()
    client = probe_client(redis_url)
    try:
        redis_error, beats = probe_processes(client)
        memory = probe_memory(client) if redis_error is None else None
        shards = _optional(sharding.read_count, client, "the shard count") if redis_error is None else None
        retention = probe_retention(client, shards or 1) if redis_error is None else None
        cluster = _optional(read_cluster, client, "the cluster's nodes") if redis_error is None else None
        waiting = any(int(beat.details.get("wait_replicas") or 0) for beat in beats)
        replicas_of = cluster.replicas_of if cluster is not None else None
        if waiting and replicas_of is None and redis_error is None:
            replicas_of = _optional(replicas_of_masters, client, "the replicas")
    finally:
        close(client)
    return build_status(
        data_dir=data_dir,
        running=running,
        redis_url=redacted(redis_url),
        redis_error=redis_error,
        gateway_url=gateway_url,
        gateway_error=probe_gateway(gateway_url) if gateway_url else None,
        beats=beats,
        now=time.time(),
        hostname=socket.gethostname(),
        memory=memory,
        retention=retention,
        cluster=cluster,
        shards=shards,
        shards_wanted=env_int("DOLMEN_SHARDS"),
        replicas_of=replicas_of,
    )


def _render_status(status: PlatformStatus) -> None:
    def state(error: str | None) -> str:
        return "ok" if error is None else f"FAILING: {error}"

    if status.supervisor_pid is not None:
        echo(f"Platform  running (supervisor pid {status.supervisor_pid}), data dir {status.data_dir}")
    else:
        echo(f"Platform  no local supervisor for data dir {status.data_dir}")
    valkey_pid = status.supervised.get("valkey")
    kind = f"embedded Valkey, pid {valkey_pid}" if status.embedded_valkey else "external"
    if status.cluster is not None:
        kind = f"external {status.cluster.describe()}"
    if status.shards is not None:
        kind += f", {status.shards} shard{'' if status.shards == 1 else 's'}"
    echo(f"Redis     {status.redis_url} ({kind}): {state(status.redis_error)}")
    if status.cluster is not None:
        for address, count in status.cluster.replicas_of or [(m, -1) for m in status.cluster.masters]:
            echo(f"          master {address}" + (f", {count} replica{'' if count == 1 else 's'}" if count >= 0 else ""))
    if status.memory is not None:
        echo(f"Memory    {status.memory.describe()}")
    if status.retention is not None:
        echo(f"Retention {status.retention.describe(int(time.time() * 1000))}")
    if status.gateway_url is not None:
        echo(f"Gateway   {status.gateway_url}: {state(status.gateway_error)}")
    echo()
    rows = [
        [p.kind, p.id, p.pid, p.host, f"{p.age_s:.1f}s ago", "healthy" if p.healthy else "STALE"]
        for p in status.processes
    ]
    emit_table(["KIND", "ID", "PID", "HOST", "LAST SEEN", "STATE"], rows)
    echo()
    if status.problems:
        echo(f"{len(status.problems)} problem(s):")
        for problem in status.problems:
            echo(f"  - {problem}")
    else:
        echo("All healthy.")


@click.command("status")
@pass_ctx
def status_cmd(ctx: CliContext) -> None:
    """Show what runs: supervisor, Redis, gateway and every process's heartbeat.

    Exits 1 if something is unhealthy, 3 if no platform runs for this data directory.
    """
    status = collect_status(ctx)
    if ctx.json_output:
        emit_json(status.to_json())
    else:
        _render_status(status)
    if status.problems:
        click.get_current_context().exit(1)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(status_cmd)


def probe_processes(client: StoreClient) -> tuple[str | None, list[ProcessInfo]]:
    """Whether Redis answers (None, or why not) and, if it does, the processes' heartbeats."""
    redis_error = probe_redis(client)
    if redis_error is not None:
        return redis_error, []
    try:
        return None, read_processes(client)
    except DolmenError as exc:
        return str(exc), []
