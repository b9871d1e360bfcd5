"""Command: `gc`, removing old revisions and component bytes nothing needs any more."""

from __future__ import annotations

from typing import Any

import click

from ..deploy.gc import DEFAULT_GRACE_MS, DEFAULT_KEEP, GcPolicy, GcReport, collect
from ..deploy.fields import parse_duration
from ..store.connection import connect
from .shared import CliContext, echo, emit_json, emit_table, pass_ctx
from .deploy_output import short, when


class Duration(click.ParamType):
    """A duration as a deployment writes it (`30s`, `5m`, `1h`), or 0 for none.

    A bare number other than 0 is refused, as in the deployment YAML: `5`
    could mean 5 ms or 5 minutes, and a grace read too short removes revisions.
    """

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The duration in ms; click's usage error (exit 2) for a bare number other than 0 or a malformed one."""
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.isdigit() and int(text) == 0:
            return 0
        if text.isdigit():
            self.fail(f"'{text}' has no unit; write e.g. 30s, 5m or 1h ({text}ms for milliseconds, 0 for none)", param, ctx)
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be removed and the bytes it would free; change nothing.")
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=DEFAULT_KEEP,
    show_default=True,
    help="Revisions made by `platform deploy` to keep, newest first (besides the active one and those in use).",
)
@click.option(
    "--grace",
    "grace_ms",
    type=Duration(),
    default=f"{DEFAULT_GRACE_MS // 60000}m",
    show_default=True,
    help="Keep every revision stored or active less than this long ago: 30s, 5m, 1h, 7d (0 for none).",
)
@pass_ctx
def gc_cmd(ctx: CliContext, dry_run: bool, keep: int, grace_ms: int) -> None:
    """Remove old revisions and the component bytes that no kept revision and no unfinished execution needs.

    Kept: the active revision, the last --keep deployed ones, every revision
    that unfinished executions were started from, and any revision used
    within --grace; every component such a revision names or an unfinished
    execution is pinned to. The files of removed components in the data
    directory are removed too.
    """
    client = connect(ctx.redis_url())
    ctx.on_close(client.close)
    report = collect(client, None if dry_run else ctx.data_dir, GcPolicy(keep, grace_ms), dry_run=dry_run)
    if ctx.json_output:
        emit_json(report.to_json())
    else:
        print_report(report)


def print_report(report: GcReport) -> None:
    """The revisions and components, what becomes of each, and the bytes freed."""
    would = report.dry_run
    pruned = set(report.pruned)
    collected = {c.digest for c in report.collected}
    if report.plan.revisions:
        emit_table(
            ["revision", "name", "created", "", "why kept"],
            [
                [r.number, r.name, when(r.created_at), _fate(r.number in pruned, would), "; ".join(r.reasons)]
                for r in report.plan.revisions
            ],
        )
    if report.plan.components:
        emit_table(
            ["component", "digest", "size", "", "why kept"],
            [
                [", ".join(c.names) or "(in no revision)", short(c.digest), _size(c.size), _fate(c.digest in collected, would),
                 "; ".join(c.reasons) or ("a deploy or rollback needed it meanwhile" if c.digest in report.spared else "")]
                for c in report.plan.components
            ],
        )  # fmt: skip
    revisions = len(report.pruned)
    components = len(report.collected)
    verb = "would remove" if would else "removed"
    text = (
        f"{verb} {revisions} revision{'s' if revisions != 1 else ''} and {components} "
        f"component{'s' if components != 1 else ''}, {'freeing' if would else 'freed'} {_size(report.freed)} in Redis"
    )
    if report.local_bytes:
        text += f" and {_size(report.local_bytes)} in the data directory"
    grace_ms = report.policy.grace_ms
    grace = f"{grace_ms // 60000}m" if grace_ms and not grace_ms % 60000 else f"{grace_ms / 1000:g}s"
    echo(text + f" (kept: the active revision, the last {report.policy.keep} deployed, those in use or used within {grace})")


def _fate(gone: bool, would: bool) -> str:
    if gone:
        return "would go" if would else "removed"
    return "kept"


def _size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def register(cli: click.Group) -> None:
    """Add this module's command to the root group."""
    cli.add_command(gc_cmd)
