"""`platform executions purge`: remove finished execution trees now, whatever their retention."""

from __future__ import annotations

import datetime as dt
import time

import click

from ..client import Client
from ..deploy.fields import parse_duration
from ..errors import UsageError
from ..ffqn import Ffqn
from ..model import similar_functions
from ..store.purge import PURGE_STATUSES, PurgeFilter, PurgeReport
from .shared import CliContext, echo, emit_json, emit_table, pass_ctx
from .executions import executions_group


def parse_before(text: str, now_ms: int) -> int:
    """ms since the epoch of TIME: an ISO 8601 time (UTC unless it names an offset) or a duration ago (`7d`, `12h`).

    `now_ms` is now, in ms since the epoch. Raises `UsageError` for text that is neither.
    """
    try:
        return now_ms - parse_duration(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--before: '{text}' is neither an ISO 8601 time (2025-01-31, 2025-01-31T12:00:00Z) "
            "nor a duration ago (7d, 12h, 30m, 90s)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


@click.command("purge")
@click.option(
    "--before",
    metavar="TIME",
    help="Only trees whose root finished before TIME: an ISO 8601 time (2025-01-31T12:00:00Z; "
    "UTC when it names no offset) or a duration ago (7d, 12h, 30m). [default: now]",
)
@click.option("--ffqn", help="Only trees whose root is an execution of this function.")
@click.option(
    "--status",
    metavar="S",
    help="Only trees whose root finished so: finished (any), ok, err (an `err` result), continued "
    f"(continued as new), failed (any failure) or one failure kind. One of: {', '.join(PURGE_STATUSES)}.",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed, and remove nothing.")
@pass_ctx
def purge_cmd(ctx: CliContext, before: str | None, ffqn: str | None, status: str | None, dry_run: bool) -> None:
    """Remove finished execution trees (a root and all its descendants) now, whatever their retention.

    Only top-level executions are picked; their children go with them. A tree
    whose root finished while some of its descendants still run is kept and
    listed: purge again once they have finished. A purged execution is gone:
    reading it is `not found` (HTTP 404).
    """
    now = time.time_ns() // 1_000_000
    if ffqn is not None:
        Ffqn.parse(ffqn)  # a typo selects nothing: say so instead
    selection = PurgeFilter(parse_before(before, now) if before else now, ffqn=ffqn, status=status)
    client = Client.connect(ctx.redis_url())
    ctx.on_close(client.close)
    report = client.purge(selection, dry_run=dry_run)
    if ctx.json_output:
        emit_json(report.to_json())
    else:
        _print(report)
    if ffqn is not None and not report.purged and not report.kept:
        # On stderr, also with --json: the JSON on stdout stays as it is.
        click.echo(_nothing_for(client, ffqn, filtered=before is not None or status is not None), err=True)


def _nothing_for(client: Client, ffqn: str, *, filtered: bool) -> str:
    """Why no tree matched `--ffqn`: not deployed in any stored revision, the other filters, or never a finished root."""
    stored = {name for n in client.deployments.numbers() for name in client.deployments.get(n).functions()}
    if ffqn not in stored:
        similar = similar_functions(ffqn, stored)
        meant = f"did you mean {', '.join(similar)}? " if similar else ""
        return (
            f"hint: {ffqn} is not a function of any stored deployment revision; {meant}"
            "`platform deployments show` lists the deployed ones (check the function's name and its version after '@')"
        )
    if filtered:
        return f"hint: no finished top-level execution of {ffqn} matched --before and --status as given"
    return (
        f"hint: no finished top-level execution of {ffqn} matched; purge picks trees by their root's function, "
        "so executions it runs as a child go with their parent's tree"
    )


def _print(report: PurgeReport) -> None:
    if report.purged:
        rows = [[t.execution_id, t.ffqn, t.outcome, _time(t.finished_at), t.executions] for t in report.purged]
        emit_table(["id", "function", "outcome", "finished", "executions"], rows)
    for kept in report.kept:
        echo(f"kept {kept.execution_id}: {kept.reason}")
    trees = f"{len(report.purged)} tree{'' if len(report.purged) == 1 else 's'} ({report.executions} execution{'' if report.executions == 1 else 's'})"
    echo(f"would purge {trees}; nothing was removed (--dry-run)" if report.dry_run else f"purged {trees}")


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(cli: click.Group) -> None:
    """Add `purge` to the `executions` group (`cli` is taken for the registry's common signature)."""
    executions_group.add_command(purge_cmd)
