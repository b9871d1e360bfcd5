"""`platform down`: stop the platform `platform up` runs for a data directory, from another terminal."""

from __future__ import annotations

import os
import signal
import time

import click

from ..config import PlatformFile, no_platform, pid_alive
from ..errors import NotFoundError, ShutdownTimeoutError
from .shared import CliContext, Seconds, emit_json, pass_ctx


@click.command("down")
@click.option(
    "--timeout", type=Seconds(), default=60.0, show_default=True,
    help="Seconds to wait for it to stop (its services get `platform up --stop-timeout` each).",
)  # fmt: skip
@pass_ctx
def down_cmd(ctx: CliContext, timeout: float) -> None:
    """Stop the platform that `platform up` runs for the data directory, as Ctrl-C in its terminal does.

    Sends SIGTERM to its supervisor, which stops the gateway, the scheduler and the runners (each lets its
    attempts end, then is killed after `up`'s --stop-timeout), then the embedded Valkey, and removes
    platform.json; waits up to --timeout seconds for that.

    Exit status: 0 once stopped; 1 when it still runs after --timeout; 3 when no platform runs for the data
    directory.
    """
    found = PlatformFile.read(ctx.data_dir)
    if found is None or not found.is_live():
        raise no_platform(ctx.data_dir)
    pid = found.supervisor_pid
    if pid is None:
        raise NotFoundError(
            f"{PlatformFile.path(ctx.data_dir)} names no supervisor pid (written by an older Dolmen); "
            "stop it with Ctrl-C in the terminal of its `platform up`"
        )
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it stopped meanwhile
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            raise ShutdownTimeoutError(
                f"the platform of {ctx.data_dir} (supervisor pid {pid}) is still stopping after {timeout:g} s; "
                f"wait, run `platform down` again, or `kill -9 {pid}` to stop it at once (its services die with it)"
            )
        time.sleep(0.1)
    if ctx.json_output:
        emit_json({"stopped": True, "data_dir": str(ctx.data_dir), "supervisor_pid": pid})
    else:
        click.echo(f"stopped the platform of {ctx.data_dir} (supervisor pid {pid})")


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(down_cmd)
