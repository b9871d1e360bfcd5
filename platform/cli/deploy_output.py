"""How `platform deploy`, `upgrade`, `versions` and friends print their results for people."""

from __future__ import annotations

import datetime as dt

from ..cron import Schedule
from ..model import ComponentConfig, Revision
from ..deploy.upgrade_checks import ExecutionReport, UpgradeReport
from ..deploy.versions import VersionRow
from ..store.retention import DEFAULT_RETENTION_MS
from .shared import echo, emit_table

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
    """ms since the epoch as `2025-01-31 12:00:00Z` (UTC)."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def print_component(comp: ComponentConfig) -> None:
    """A component: name, kind, short digest, source, settings, then each function's WIT signature."""
    echo(f"component {comp.name} ({comp.kind}) {short(comp.digest)}  from {comp.source}")
    echo(f"  {settings(comp)}")
    for ffqn, fty in sorted(comp.functions.items()):
        echo(f"  {ffqn}: {fty.wit()}")


def settings(comp: ComponentConfig) -> str:
    """The component's deployment settings on one line, as the YAML names them."""
    if comp.kind == "stub":
        # Never run: none of a run's settings apply.
        parts = ["never run: results supplied from outside (PUT /v1/executions/{id}/result)"]
        if comp.retention_ms is not None or comp.function_retention_ms:
            parts.append(retention_text(comp))
        return "; ".join(parts)
    retry = comp.retry
    if comp.kind == "external":
        # Run by workers outside the platform: only the attempts' settings apply.
        parts = [
            "run by external workers (POST /v1/workers/claim)",
            f"timeout {_duration(comp.timeout_ms)}",
            f"retry {retry.max_attempts} attempts, backoff {_duration(retry.initial_backoff_ms)}-{_duration(retry.max_backoff_ms)}"
            + (", err results too" if retry.retry_on_err else ""),
        ]
        if comp.retention_ms is not None or comp.function_retention_ms:
            parts.append(retention_text(comp))
        return "; ".join(parts)
    parts = [
        f"timeout {_duration(comp.timeout_ms)}",
        f"memory {_size(comp.memory_limit_bytes)}",
        f"retry {retry.max_attempts} attempts, backoff {_duration(retry.initial_backoff_ms)}-{_duration(retry.max_backoff_ms)}"
        + (", err results too" if retry.retry_on_err else ""),
    ]
    parts.append(f"instances reuse (max {comp.max_instance_uses} uses)" if comp.instances == "reuse" else "instances fresh")
    if comp.kind == "activity":
        if comp.env:
            # Names only: a literal value may be sensitive too, and a secret's value is never known here.
            secrets = comp.secrets()
            names = (f"{name} ({secrets[name]})" if name in secrets else name for name in sorted(comp.env))
            parts.append(f"env {', '.join(names)}")
        if comp.allowed_hosts is not None:  # else the default: public hosts only
            parts.append(f"allowed_hosts {', '.join(comp.allowed_hosts) or 'none (no outgoing requests)'}")
    else:
        parts += [f"upgrade {comp.upgrade}", f"blocking {comp.blocking} ({_duration(comp.blocking_timeout_ms)})"]
        parts.append(f"history {comp.history.max_events} events, {_size(comp.history.max_bytes)}")
    if comp.retention_ms is not None or comp.function_retention_ms:  # else the platform's default
        parts.append(retention_text(comp))
    return "; ".join(parts)


def retention_text(comp: ComponentConfig) -> str:
    """`retention 3d` (and `, 1h for FFQN` per override), in the largest whole unit."""
    def whole(ms: int) -> str:
        for unit, scale in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
            if ms % scale == 0:
                return f"{ms // scale}{unit}"
        return f"{ms}ms"

    text = f"retention {whole(comp.retention_ms) if comp.retention_ms is not None else whole(DEFAULT_RETENTION_MS) + ' (default)'}"
    return text + "".join(f", {whole(ms)} for {ffqn}" for ffqn, ms in sorted(comp.function_retention_ms.items()))


def _duration(ms: int | None) -> str:
    if ms is None:
        return "none"
    return f"{ms / 1000:g}s" if ms % 1000 == 0 or ms >= 10_000 else f"{ms}ms"


def _size(size: int | None) -> str:
    if size is None:
        return "unlimited"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def print_revision(revision: Revision, *, active: bool) -> None:
    """A revision: its number, name and creation time, then its components, routes and schedules."""
    state = "active" if active else "inactive"
    echo(f"revision {revision.number} '{revision.name}' ({state}), created {when(revision.created_at)}")
    if revision.source:
        echo(f"from {revision.source}")
    for comp in revision.components:
        print_component(comp)
    for route in revision.routes:
        echo(f"route {route.method} {route.path} -> {route.function}")
    for schedule in revision.schedules:
        print_schedule(schedule)


def print_schedule(schedule: Schedule) -> None:
    """A schedule on one line: name, cron expression, time zone, misfire policy and function."""
    echo(f"schedule {schedule.name}: '{schedule.cron}' ({schedule.timezone}, misfire {schedule.misfire}) -> {schedule.function}")


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
    """`platform versions`' table: per function and digest, the unfinished executions and where they came from."""
    emit_table(
        ["function", "digest", "unfinished", "revisions", "components", "new executions"],
        [
            [r.ffqn, short(r.digest), r.unfinished, ", ".join(str(n) for n in r.revisions), ", ".join(r.components), "yes" if r.active else ""]
            for r in rows
        ],
    )
