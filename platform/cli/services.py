"""Commands that run one service in the foreground: `runner`, `scheduler`, `gateway`.

`platform up` starts each of these as its own OS process; run them alone to
spread a platform over several machines sharing one Redis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..config import DEFAULT_GATEWAY_PORT, ENV_WAIT_REPLICAS, ENV_WAIT_TIMEOUT_MS
from ..shutdown import stop_event_on_signals
from .shared import CliContext, Seconds, pass_ctx

_F = TypeVar("_F", bound=Callable[..., Any])


def wait_options(command: _F) -> _F:
    """`--wait-replicas` and `--wait-timeout-ms`, for `gateway` and for `up` (which passes them to its gateway)."""
    command = click.option(
        "--wait-timeout-ms",
        type=click.IntRange(min=1),
        default=None,
        metavar="MS",
        help="How long a write waits for those replicas (at most 10000); past it the answer is a 503 saying the "
        f"write is on the master only. Also read from {ENV_WAIT_TIMEOUT_MS} [default: 1000].",
    )(command)
    return click.option(
        "--wait-replicas",
        type=click.IntRange(min=0),
        default=None,
        metavar="N",
        help="Answer an invocation or a cancel only once N replicas of its master have it (Valkey's WAIT), so that "
        f"a failover right after is unlikely to lose it. Also read from {ENV_WAIT_REPLICAS} [default: 0, no waiting].",
    )(command)


@click.command("runner")
@click.option("--concurrency", type=int, default=16, show_default=True, help="Executions run in parallel (threads; wasm runs without the GIL).")
@click.option("--name", help="Consumer name in the queues [default: host:pid].")
@pass_ctx
def runner_cmd(ctx: CliContext, concurrency: int, name: str | None) -> None:
    """Run activities and workflows from the queues until stopped.

    The values of secrets that deployments name (`{secret: NAME}` in `env`) come
    from DOLMEN_SECRET_<NAME> (upper-cased, '-' as '_') or the YAML file
    DOLMEN_SECRETS_FILE names.
    """
    from ..runner.secrets import RunnerSecrets
    from ..runner.settings import RunnerSettings
    from ..runner.process import serve_runner

    RunnerSecrets().check()  # refuse to start on an unreadable or malformed DOLMEN_SECRETS_FILE
    settings = RunnerSettings(redis_url=ctx.redis_url(), data_dir=ctx.data_dir, concurrency=concurrency, name=name)
    serve_runner(settings, stop_event_on_signals())


@click.command("scheduler")
@pass_ctx
def scheduler_cmd(ctx: CliContext) -> None:
    """Fire timers (retries, sleeps, schedules), recover lost work, verify upgrades."""
    from ..scheduler import SchedulerSettings, serve_scheduler

    serve_scheduler(SchedulerSettings(redis_url=ctx.redis_url(), data_dir=ctx.data_dir), stop_event_on_signals())


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=DEFAULT_GATEWAY_PORT, show_default=True, help="Port to listen on.")
@click.option(
    "--token",
    "tokens",
    multiple=True,
    metavar="TOKEN[:SCOPE]",
    help="Require this bearer token (at least 8 random characters: letters, digits, -._~+/=); SCOPE is invoke "
    "or admin (the default). Repeatable; also read from DOLMEN_GATEWAY_TOKENS (comma-separated). Without tokens "
    "the API is open.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Allow browser calls from this origin (CORS is off by default). Repeatable; "
    "also read from DOLMEN_GATEWAY_CORS_ORIGINS.",
)
@click.option(
    "--max-body-bytes",
    type=int,
    default=None,
    help="Largest request body (413 above) [default: twice DOLMEN_MAX_VALUE_BYTES, 8 MiB].",
)
@click.option("--max-wait", type=Seconds(), default=60.0, show_default=True, help="Longest wait of any request, in seconds.")
@click.option(
    "--route-wait", type=Seconds(), default=30.0, show_default=True,
    help="Seconds a deployment route waits for the result before answering 202 (a request's Prefer: wait=N changes it, "
    "up to --max-wait).",
)
@wait_options
@pass_ctx
def gateway_cmd(
    ctx: CliContext,
    host: str,
    port: int,
    tokens: tuple[str, ...],
    cors_origins: tuple[str, ...],
    max_body_bytes: int | None,
    max_wait: float,
    route_wait: float,
    wait_replicas: int | None,
    wait_timeout_ms: int | None,
) -> None:
    """Serve the HTTP API, the deployment routes and the dashboard."""
    from ...gateway.server import GatewaySettings, serve_gateway

    settings = GatewaySettings.from_env(
        redis_url=ctx.redis_url(), data_dir=ctx.data_dir, host=host, port=port, tokens=tokens,
        cors_origins=cors_origins, wait_replicas=wait_replicas, wait_timeout_ms=wait_timeout_ms,
    ).replace(max_wait_s=max_wait, route_wait_s=route_wait)  # fmt: skip
    if max_body_bytes is not None:
        settings = settings.replace(max_body_bytes=max_body_bytes)
    serve_gateway(settings)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(runner_cmd)
    cli.add_command(scheduler_cmd)
    cli.add_command(gateway_cmd)
