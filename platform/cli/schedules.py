"""Commands: `schedules list` (the cron schedules of the active revision)."""

from __future__ import annotations

import click

from ..client import Client
from .shared import CliContext, emit_json, emit_table, pass_ctx
from .deploy_output import when


@click.group("schedules")
def schedules_group() -> None:
    """Cron schedules of the active deployment."""


@schedules_group.command("list")
@click.option("--next", "count", type=click.IntRange(1, 100), default=3, show_default=True, help="How many next fire times to show.")
@pass_ctx
def schedules_list(ctx: CliContext, count: int) -> None:
    """Each schedule: function, cron expression, time zone, misfire policy, last fire and next fire times (UTC)."""
    client = Client.connect(ctx.redis_url())
    ctx.on_close(client.close)
    listing = client.schedules(count)
    if ctx.json_output:
        emit_json({"revision": client.revision().number, "schedules": listing})
        return
    emit_table(
        ["name", "function", "cron", "timezone", "misfire", "last fire", "next fires"],
        [
            [s["name"], s["function"], s["cron"], s["timezone"], s["misfire"],
             when(s["last_fired"]) if s["last_fired"] is not None else "-", ", ".join(when(t) for t in s["next"])]
            for s in listing
        ],  # fmt: skip
    )


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(schedules_group)
