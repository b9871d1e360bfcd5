"""Command `up`: run the whole platform in the foreground.

`platform up` is a supervisor: it starts the embedded Valkey (unless `--redis`
names a server), then runners, a scheduler and a gateway as separate OS
processes, restarts whichever dies, and records everything in
`<data-dir>/platform.json` so that other commands find the platform without
flags; `platform status` (see `status`) reads it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click
import structlog

from ..config import (
    DEFAULT_GATEWAY_PORT, ENV_REDIS, ENV_WAIT_REPLICAS, ENV_WAIT_TIMEOUT_MS, PlatformFile, check_env, env_int,
)  # fmt: skip
from ..embedded import EmbeddedValkey, free_port, plan_embedded, port_is_free, valkey_binary
from ..maxmemory import DEFAULT_SHARE, ENV_MAXMEMORY, resolve_maxmemory
from ..store import shards as sharding
from ..errors import ConfigError, ConflictError, DolmenError
from ..runner.secrets import RunnerSecrets
from ..store.memory import format_bytes
from ..supervisor import (
    ChildSpec,
    Expected,
    StopSignals,
    Supervisor,
    gateway_url_for,
    readiness_problems,
    service_specs,
)
from ..store.async_links import ReplicaWait
from .shared import CliContext, Seconds, pass_ctx
from .services import wait_options
from .status import forget_heartbeats, probe_client, probe_gateway, probe_processes, probe_redis
from ..store.access import redacted
from ..store.connection import StoreClient, close
from ..store.urls import with_every_node

log = structlog.get_logger("dolmen.up")


# ---------------------------------------------------------------- platform up

# `--runners auto` stops here: each runner holds its own instances, compiled
# components and connections, and a bigger machine is better told how many it wants.
MAX_AUTO_RUNNERS = 8


def auto_runners() -> int:
    """Runner processes for `--runners auto`: one per CPU this process may run on, at most `MAX_AUTO_RUNNERS`.

    One per CPU, not one in all: a runner's Python holds its GIL, and fresh
    wasm instances do not scale across the threads of one process: two threads
    instantiating and calling componentize-py guests took as long per instance
    as one, at twice the CPU (four times the kernel time: mapping and unmapping
    each instance's memory, and flushing the other thread's TLB), while two
    processes took half as long (see README, "Benchmarks").
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_AUTO_RUNNERS))


class RunnerCount(click.ParamType):
    """`--runners`: a whole number of at least 1, or `auto` (`auto_runners`)."""

    name = "N|auto"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The number of runner processes; a usage error naming the accepted forms otherwise."""
        text = str(value).strip()
        if text.lower() == "auto":
            return auto_runners()
        if text.isdecimal() and int(text) >= 1:
            return int(text)
        self.fail(
            f"{value!r} is not a number of runner processes: give a whole number of at least 1, "
            f"or 'auto' (one per CPU, at most {MAX_AUTO_RUNNERS})",
            param,
            ctx,
        )


@dataclass(frozen=True, slots=True)
class UpOptions:
    """`platform up`'s options, checked: timeouts in seconds, `fsync` the embedded Valkey's appendfsync."""

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
    # More options of the gateway's command line (--wait-replicas, --wait-timeout-ms).
    gateway_args: tuple[str, ...] = ()


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
            f"terminal, or `platform down`), or pass another --data-dir"
        )
    return previous


def run_platform(ctx: CliContext, opts: UpOptions) -> None:
    """Run the platform until a signal (SIGINT, SIGTERM, SIGHUP; a second one stops without waiting).

    Raises `ConflictError` when a platform already runs for this data directory, `ConfigError` when the
    gateway's port is taken (or the store's URL is malformed), and `DolmenError` when Redis or a service is
    not ready within `startup_timeout_s`; what it started is stopped first.
    """
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

    log.info("starting platform", data_dir=str(data_dir), redis=redacted(redis_url), embedded_valkey=valkey is not None)
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
                f"Redis at {redacted(redis_url)} did not answer within {opts.startup_timeout_s:.0f}s "
                f"({probe_redis(client)}){where}"
            )
        # A DOLMEN_SHARDS other than the store's would stop every runner and scheduler at start, again and again.
        sharding.load(client)
        # A cluster: its processes (and other commands) know every node, so they start while the first is down.
        redis_url = with_every_node(redis_url, client)
        if previous is not None:
            forget_heartbeats(client, set(previous.processes.values()))
        # The embedded server's own processes talk to it over its Unix socket (see embedded.py).
        services_url = valkey.local_url if valkey is not None else redis_url
        for spec in service_specs(
            services_url, data_dir, runners=opts.runners, host=opts.host, port=opts.port, debug=opts.debug,
            gateway_args=opts.gateway_args,
        ):  # fmt: skip
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
        close(client)
        log.info("platform stopped")


def _wait_until_ready(
    supervisor: Supervisor,
    signals: StopSignals,
    client: StoreClient,
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
        line = {"event": "ready", "gateway_url": gateway_url, "redis_url": redacted(redis_url), "data_dir": str(data_dir)}
        maxmemory = valkey.maxmemory if valkey else None
        click.echo(json.dumps({**line, "embedded_valkey": valkey is not None, "maxmemory": maxmemory, "runners": opts.runners}))
    else:
        runners = f"{opts.runners} runner process{'es' if opts.runners != 1 else ''}"
        click.echo(
            f"Dolmen is up: gateway {gateway_url}, Redis {redacted(redis_url)} ({where}), {runners}. Press Ctrl-C to stop."
        )


@click.command("up")
@click.option(
    "--runners",
    type=RunnerCount(),
    default="auto",
    show_default=True,
    help=f"Runner processes: a number, or 'auto' for one per CPU this machine gives the platform (at most {MAX_AUTO_RUNNERS}).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the gateway listens on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=DEFAULT_GATEWAY_PORT, show_default=True, help="Gateway port."
)
@click.option("--startup-timeout", type=Seconds(), default=60.0, show_default=True, help="Seconds to become ready.")
@click.option("--stop-timeout", type=Seconds(), default=10.0, show_default=True, help="Seconds before SIGKILL at stop.")
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
@wait_options
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
    wait_replicas: int | None,
    wait_timeout_ms: int | None,
) -> None:
    """Run the whole platform in the foreground until Ctrl-C.

    Without --redis, starts an embedded Valkey persisted in DATA_DIR/valkey;
    then runners, a scheduler and the gateway as separate processes, restarted
    if they die. Other commands run with the same data directory find it.

    Exit status: 0 once stopped; 1 when it cannot start (a platform already runs for this data directory, or
    Redis or a service is not ready within --startup-timeout); 2 for a port in use, a bad option or a malformed
    DOLMEN_* variable.
    """
    check_env()  # a malformed tuning variable would make every runner crash and restart
    RunnerSecrets().check()  # a bad DOLMEN_SECRETS_FILE would fail every attempt that needs a secret
    # Imported here, as `platform gateway` does: the gateway is the HTTP layer above the platform's CLI.
    from ...gateway.settings import check_tokens_env

    check_tokens_env()  # a bad DOLMEN_GATEWAY_TOKENS would make the gateway exit and restart forever
    if maxmemory is not None and (ctx.redis_flag or os.environ.get(ENV_REDIS)):
        raise ConfigError(
            "--maxmemory limits the embedded Valkey, but --redis (or DOLMEN_REDIS_URL) names your own server: "
            "set maxmemory there (CONFIG SET maxmemory SIZE, with maxmemory-policy noeviction) and drop --maxmemory"
        )
    opts = UpOptions(
        runners, host, port, startup_timeout, stop_timeout, ctx.json_output, ctx.debug, fsync,
        maxmemory=resolve_maxmemory(maxmemory), gateway_args=gateway_wait_args(wait_replicas, wait_timeout_ms),
    )  # fmt: skip
    run_platform(ctx, opts)


def gateway_wait_args(replicas: int | None, timeout_ms: int | None) -> tuple[str, ...]:
    """The gateway's --wait-* options as given to `up`, checked now (with the environment's) rather than in a
    gateway that would fail and restart; the environment itself reaches the gateway as it is.

    `timeout_ms` in ms; None: not given. Raises `ConfigError` for a timeout outside 1 to 10000 ms.
    """
    ReplicaWait(
        max(env_int(ENV_WAIT_REPLICAS) if replicas is None else replicas, 1),
        env_int(ENV_WAIT_TIMEOUT_MS) if timeout_ms is None else timeout_ms,
    )
    args: list[str] = []
    if replicas is not None:
        args += ["--wait-replicas", str(replicas)]
    if timeout_ms is not None:
        args += ["--wait-timeout-ms", str(timeout_ms)]
    return tuple(args)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(up_cmd)
