"""Commands: `up` (run the whole platform in the foreground) and `status`.

`platform up` is a supervisor: it starts the embedded Valkey (unless `--redis`
names a server), then runners, a scheduler and a gateway as separate OS
processes, restarts whichever dies, and records everything in
`<data-dir>/platform.json` so that other commands find the platform without
flags. `platform status` reads that file and asks each part how it is.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import redis
import structlog

from ..config import DEFAULT_GATEWAY_PORT, ENV_REDIS, PlatformFile, check_env
from ..embedded import EmbeddedValkey, free_port, plan_embedded, port_is_free, valkey_binary
from ..maxmemory import DEFAULT_SHARE, ENV_MAXMEMORY, resolve_maxmemory
from ..errors import ConfigError, ConflictError, DolmenError, NotFoundError
from ..heartbeat import PROCESSES_KEY, STALE_AFTER_S, ProcessInfo, read_processes
from ..runner.secrets import RunnerSecrets
from ..store.connection import map_redis_errors
from ..store.memory import StoreMemory, format_bytes, read_memory
from ..supervisor import (
    ChildSpec,
    Expected,
    StopSignals,
    Supervisor,
    gateway_url_for,
    readiness_problems,
    service_specs,
)
from .context import CliContext, echo, emit_json, emit_table, pass_ctx

log = structlog.get_logger("dolmen.up")


# ---------------------------------------------------------------- status, judged purely


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One process of the heartbeat hash, as `platform status` shows it."""

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

    def to_json(self) -> dict[str, Any]:
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
            },
            "gateway": {"url": self.gateway_url, "ok": self.gateway_error is None, "error": self.gateway_error},
            "memory": self.memory.to_json() if self.memory is not None else None,
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
) -> PlatformStatus:
    """Judge what was observed: which process is stale, which supervised one is missing, whether Redis is full."""
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
    for beat in beats:
        age = max(0.0, now - beat.last_seen)
        healthy = age < STALE_AFTER_S
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
    )


# ---------------------------------------------------------------- probes (I/O)


def probe_client(url: str) -> redis.Redis:
    """A client with short timeouts, for health probes that must not hang."""
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
    except ValueError as exc:
        raise ConfigError(f"'{url}' is not a Redis URL ({exc}); use redis://HOST:PORT[/DB]") from None


def probe_redis(client: redis.Redis) -> str | None:
    """None if Redis answers PING, else why not."""
    try:
        with map_redis_errors():
            client.ping()
    except DolmenError as exc:
        return str(exc)
    return None


def probe_memory(client: redis.Redis) -> StoreMemory | None:
    """Redis's memory use, or None if it cannot tell (a server that forbids INFO)."""
    try:
        return read_memory(client)
    except DolmenError as exc:
        log.debug("could not read Redis's memory use", error=str(exc))
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


def forget_heartbeats(client: redis.Redis, pids: set[int]) -> None:
    """Drop the heartbeats of dead processes of this host, so status does not report them stale."""
    hostname = socket.gethostname()
    try:
        for proc in read_processes(client):
            if proc.host == hostname and proc.pid in pids:
                with map_redis_errors():
                    client.hdel(PROCESSES_KEY, proc.id)
    except DolmenError as exc:
        log.debug("could not forget heartbeats", pids=sorted(pids), error=str(exc))


# ---------------------------------------------------------------- platform up


@dataclass(frozen=True, slots=True)
class UpOptions:
    runners: int = 1
    host: str = "127.0.0.1"
    port: int = DEFAULT_GATEWAY_PORT
    startup_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0
    json_output: bool = False
    debug: bool = False
    fsync: str = "everysec"
    # The embedded Valkey's maxmemory in bytes (None: the default, see maxmemory.py).
    maxmemory: int | None = None


def _refuse_if_running(data_dir: Path) -> PlatformFile | None:
    """The previous run's file if it is stale; an error if that run is still alive."""
    try:
        previous = PlatformFile.read(data_dir)
    except ConfigError as exc:
        log.warning("ignoring unreadable platform.json", error=str(exc))
        return None
    if previous is not None and previous.is_live():
        raise ConflictError(
            f"a platform is already running for data directory {data_dir} (supervisor pid "
            f"{previous.supervisor_pid}, gateway {previous.gateway_url}); use it, stop it (Ctrl-C in its "
            f"terminal, or `kill {previous.supervisor_pid}`), or pass another --data-dir"
        )
    return previous


def run_platform(ctx: CliContext, opts: UpOptions) -> None:
    """Run the platform until a signal; raise if it cannot start."""
    data_dir = ctx.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = _refuse_if_running(data_dir)
    if not port_is_free(opts.host, opts.port):
        raise ConfigError(
            f"port {opts.port} on {opts.host} is already in use, so the gateway cannot listen there; "
            f"pick a free one with `platform up --port PORT` (e.g. --port {free_port(opts.host)})"
        )
    signals = StopSignals().install()

    external = ctx.redis_flag or os.environ.get(ENV_REDIS)
    valkey: EmbeddedValkey | None = None
    if external:
        redis_url = external
    else:
        stale_port = urlsplit(previous.redis_url).port if previous and previous.embedded_valkey else None
        valkey = plan_embedded(data_dir, also_try=stale_port, fsync=opts.fsync, maxmemory=opts.maxmemory)
        redis_url = valkey.url
    gateway_url = gateway_url_for(opts.host, opts.port)
    client = probe_client(redis_url)

    def on_exit(spec: ChildSpec, pid: int, returncode: int) -> None:
        if spec.kind != "valkey":  # Valkey reports no heartbeat, and cannot be asked while it is down
            forget_heartbeats(client, {pid})

    supervisor = Supervisor(on_exit=on_exit)

    def record() -> None:
        PlatformFile(redis_url, gateway_url, os.getpid(), supervisor.pids(), valkey is not None).write(data_dir)

    log.info("starting platform", data_dir=str(data_dir), redis=redis_url, embedded_valkey=valkey is not None)
    try:
        deadline = time.monotonic() + opts.startup_timeout_s
        if valkey is not None:
            valkey.write_config()
            supervisor.add(valkey.child_spec(valkey_binary()))
        record()  # from now on, a second `platform up` on this data directory is refused
        if not supervisor.run_until(lambda: probe_redis(client) is None, signals.stop, deadline, record):
            if signals.stop.is_set():
                return
            where = f"; its log is {valkey.log_path}" if valkey else "; check the URL given with --redis"
            raise DolmenError(
                f"Redis at {redis_url} did not answer within {opts.startup_timeout_s:.0f}s "
                f"({probe_redis(client)}){where}"
            )
        if previous is not None:
            forget_heartbeats(client, set(previous.processes.values()))
        for spec in service_specs(
            redis_url, data_dir, runners=opts.runners, host=opts.host, port=opts.port, debug=opts.debug
        ):
            supervisor.add(spec)
        record()
        _wait_until_ready(supervisor, signals, client, gateway_url, deadline, opts, record)
        if signals.stop.is_set():
            return
        _announce(opts, data_dir, redis_url, gateway_url, valkey)
        supervisor.run_until(lambda: False, signals.stop, on_change=record)
    finally:
        log.info("stopping platform")
        supervisor.stop(opts.stop_timeout_s, signals.force)
        PlatformFile.remove(data_dir, os.getpid())
        client.close()
        log.info("platform stopped")


def _wait_until_ready(
    supervisor: Supervisor,
    signals: StopSignals,
    client: redis.Redis,
    gateway_url: str,
    deadline: float,
    opts: UpOptions,
    record: Callable[[], None],
) -> None:
    hostname = socket.gethostname()
    problems: list[str] = []

    def ready() -> bool:
        nonlocal problems
        expected = [
            Expected(spec.name, spec.kind, pid)
            for spec in supervisor.specs()
            if spec.kind in ("runner", "scheduler") and (pid := supervisor.pid(spec.name)) is not None
        ]
        redis_error, beats = probe_processes(client)
        problems = readiness_problems(
            expected, beats, hostname=hostname, redis_error=redis_error, gateway_error=probe_gateway(gateway_url)
        )
        waiting = [s.name for s in supervisor.specs() if supervisor.pid(s.name) is None]
        problems += [f"{name} is waiting to restart ({supervisor.last_exit(name)})" for name in waiting]
        return not problems

    if not supervisor.run_until(ready, signals.stop, deadline, record) and not signals.stop.is_set():
        raise DolmenError(
            f"the platform did not become ready within {opts.startup_timeout_s:.0f}s: {'; '.join(problems)}. "
            "See the log lines above; raise the limit with --startup-timeout"
        )


def _announce(
    opts: UpOptions, data_dir: Path, redis_url: str, gateway_url: str, valkey: EmbeddedValkey | None
) -> None:
    where = (
        f"embedded Valkey, data in {valkey.directory}, maxmemory {format_bytes(valkey.maxmemory)}"
        if valkey
        else "external"
    )
    if opts.json_output:
        line = {"event": "ready", "gateway_url": gateway_url, "redis_url": redis_url, "data_dir": str(data_dir)}
        maxmemory = valkey.maxmemory if valkey else None
        click.echo(json.dumps({**line, "embedded_valkey": valkey is not None, "maxmemory": maxmemory}))
    else:
        click.echo(f"Dolmen is up: gateway {gateway_url}, Redis {redis_url} ({where}). Press Ctrl-C to stop.")


@click.command("up")
@click.option("--runners", type=click.IntRange(min=1), default=1, show_default=True, help="Runner processes.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the gateway listens on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=DEFAULT_GATEWAY_PORT, show_default=True, help="Gateway port."
)
@click.option("--startup-timeout", type=float, default=60.0, show_default=True, help="Seconds to become ready.")
@click.option("--stop-timeout", type=float, default=10.0, show_default=True, help="Seconds before SIGKILL at stop.")
@click.option(
    "--fsync",
    type=click.Choice(["everysec", "always"]),
    default="everysec",
    show_default=True,
    help="Embedded Valkey's appendfsync: 'always' loses no acknowledged write in a machine crash, at a cost.",
)
@click.option(
    "--maxmemory",
    metavar="SIZE",
    default=None,
    help="Embedded Valkey's memory limit: 512MiB, 4GiB, 2GB or 50% (of this machine's memory); once full it "
    f"refuses writes. Also read from {ENV_MAXMEMORY} [default: {DEFAULT_SHARE}% of this machine's memory].",
)
@click.option("--json", "json_flag", is_flag=True, help="Print the ready line as JSON.")
@pass_ctx
def up_cmd(
    ctx: CliContext,
    runners: int,
    host: str,
    port: int,
    startup_timeout: float,
    stop_timeout: float,
    fsync: str,
    maxmemory: str | None,
    json_flag: bool,
) -> None:
    """Run the whole platform in the foreground until Ctrl-C.

    Without --redis, starts an embedded Valkey persisted in DATA_DIR/valkey;
    then runners, a scheduler and the gateway as separate processes, restarted
    if they die. Other commands run with the same data directory find it.
    """
    check_env()  # a malformed tuning variable would make every runner crash and restart
    RunnerSecrets().check()  # a bad DOLMEN_SECRETS_FILE would fail every attempt that needs a secret
    if maxmemory is not None and (ctx.redis_flag or os.environ.get(ENV_REDIS)):
        raise ConfigError(
            "--maxmemory limits the embedded Valkey, but --redis (or DOLMEN_REDIS_URL) names your own server: "
            "set maxmemory there (CONFIG SET maxmemory SIZE, with maxmemory-policy noeviction) and drop --maxmemory"
        )
    opts = UpOptions(
        runners, host, port, startup_timeout, stop_timeout, json_flag or ctx.json_output, ctx.debug, fsync,
        maxmemory=resolve_maxmemory(maxmemory),
    )  # fmt: skip
    run_platform(ctx, opts)


# ---------------------------------------------------------------- platform status


def collect_status(ctx: CliContext) -> PlatformStatus:
    """Look at the platform of this data directory (or at --redis), or raise NotFoundError."""
    data_dir = ctx.data_dir
    found = PlatformFile.read(data_dir)
    running = found if found is not None and found.is_live() else None
    explicit = ctx.redis_flag or os.environ.get(ENV_REDIS)
    if running is None and not explicit:
        if found is not None:
            raise NotFoundError(
                f"no platform is running for data directory {data_dir}: its platform.json was written by "
                f"`platform up` (pid {found.supervisor_pid}), which has exited; start it again with `platform up`"
            )
        raise NotFoundError(
            f"no platform is running for data directory {data_dir}; start one with `platform up` "
            "(or pass the --data-dir of a running one, or --redis URL)"
        )
    redis_url = explicit or (running.redis_url if running else "")
    gateway_url = ctx.gateway_url()
    client = probe_client(redis_url)
    try:
        redis_error, beats = probe_processes(client)
        memory = probe_memory(client) if redis_error is None else None
    finally:
        client.close()
    return build_status(
        data_dir=data_dir,
        running=running,
        redis_url=redis_url,
        redis_error=redis_error,
        gateway_url=gateway_url,
        gateway_error=probe_gateway(gateway_url) if gateway_url else None,
        beats=beats,
        now=time.time(),
        hostname=socket.gethostname(),
        memory=memory,
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
    echo(f"Redis     {status.redis_url} ({kind}): {state(status.redis_error)}")
    if status.memory is not None:
        echo(f"Memory    {status.memory.describe()}")
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
@click.option("--json", "json_flag", is_flag=True, help="Print the status as JSON.")
@pass_ctx
def status_cmd(ctx: CliContext, json_flag: bool) -> None:
    """Show what runs: supervisor, Redis, gateway and every process's heartbeat.

    Exits 1 if something is unhealthy, 3 if no platform runs for this data directory.
    """
    status = collect_status(ctx)
    if json_flag or ctx.json_output:
        emit_json(status.to_json())
    else:
        _render_status(status)
    if status.problems:
        click.get_current_context().exit(1)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(up_cmd)
    cli.add_command(status_cmd)


def probe_processes(client: redis.Redis) -> tuple[str | None, list[ProcessInfo]]:
    """Whether Redis answers (None, or why not) and, if it does, the processes' heartbeats."""
    redis_error = probe_redis(client)
    if redis_error is not None:
        return redis_error, []
    try:
        return None, read_processes(client)
    except DolmenError as exc:
        return str(exc), []
