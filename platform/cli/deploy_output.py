"""How `platform deploy`, `upgrade`, `versions` and friends print their results for people."""

from __future__ import annotations

import datetime as dt

from ..deploy.model import ComponentConfig, Revision
from ..deploy.upgrader import ExecutionReport, UpgradeReport
from ..deploy.versions import VersionRow
from .context import echo, emit_table

_OUTCOME_TEXT = {
    "upgraded": "moved",
    "rejected": "stays (diverges)",
    "kept": "stays",
    "busy": "busy (a runner holds it)",
    "queued": "queued (a runner holds it; the scheduler finishes the upgrade)",
    "finished": "finished meanwhile",
    "moved": "already moved",
    "would-upgrade": "would move",
    "would-reject": "would stay (diverges)",
}


def short(digest: str) -> str:
    """`sha256:0123456789ab`: enough of a digest to tell versions apart."""
    return digest[:19]


def when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def print_component(comp: ComponentConfig) -> None:
    echo(f"component {comp.name} ({comp.kind}) {short(comp.digest)}  from {comp.source}")
    for ffqn, fty in sorted(comp.functions.items()):
        echo(f"  {ffqn}: {fty.wit()}")


def print_revision(revision: Revision, *, active: bool) -> None:
    state = "active" if active else "inactive"
    echo(f"revision {revision.number} '{revision.name}' ({state}), created {when(revision.created_at)}")
    if revision.source:
        echo(f"from {revision.source}")
    for comp in revision.components:
        print_component(comp)
    for route in revision.routes:
        echo(f"route {route.method} {route.path} -> {route.function}")


def print_upgrades(reports: list[UpgradeReport] | tuple[UpgradeReport, ...], *, dry_run: bool) -> None:
    """One block per changed workflow component: its executions, then a summary."""
    groups: dict[tuple[str | None, str, str, str], list[UpgradeReport]] = {}
    for report in reports:
        change = report.change
        groups.setdefault((change.from_digest, change.to_digest, change.to_component, change.policy), []).append(report)
    for (from_digest, to_digest, component, policy), members in groups.items():
        origin = f"{short(from_digest)} -> " if from_digest else ""
        echo(f"upgrade of workflow '{component}': {origin}{short(to_digest)} (policy {policy})")
        counts: dict[str, int] = {}
        idle = 0
        for report in members:
            if not report.executions:
                idle += 1
                continue
            echo(f"  {report.change.ffqn}: {len(report.executions)} running on other digests")
            for entry in report.executions:
                echo(f"    {entry.execution_id} on {short(entry.from_digest)}: {_describe(entry)}")
                counts[entry.outcome] = counts.get(entry.outcome, 0) + 1
        if idle:
            echo(f"  {idle} other function{'s' if idle != 1 else ''}: no running executions on other digests")
        if counts:
            summary = ", ".join(f"{n} {_OUTCOME_TEXT.get(k, k).split(' (')[0]}" for k, n in sorted(counts.items()))
            echo(f"  {'would be' if dry_run else 'result'}: {summary}")


def _describe(entry: ExecutionReport) -> str:
    text = _OUTCOME_TEXT.get(entry.outcome, entry.outcome)
    return f"{text}: {entry.detail}" if entry.detail and entry.outcome not in ("queued",) else text


def print_versions(rows: list[VersionRow]) -> None:
    emit_table(
        ["function", "digest", "unfinished", "revisions", "components", "new executions"],
        [
            [r.ffqn, short(r.digest), r.unfinished, ", ".join(str(n) for n in r.revisions), ", ".join(r.components), "yes" if r.active else ""]
            for r in rows
        ],
    )
