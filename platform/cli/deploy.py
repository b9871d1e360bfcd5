"""Commands: `deploy`, `deployments`, `functions`, `upgrade`, `versions`, `fork`, `rerun`."""

from __future__ import annotations

from pathlib import Path

import click

from ..deploy.components import upgrade_target
from ..model import FunctionLimits, Revision
from ..deploy.reruns import fork_execution, rerun_execution
from ..deploy.pipeline import RegistryOptions, deploy, rollback
from ..deploy.spec import load_spec
from ..deploy.upgrade_checks import Upgrader
from ..deploy.versions import versions
from ..errors import NotFoundError, UsageError
from ..ffqn import Ffqn
from ..store.connection import StoreClient, connect
from ..store.deployments import DeploymentStore
from ..store.pauses import paused_functions
from .shared import CliContext, Seconds, echo, emit_json, emit_table, pass_ctx
from .deploy_output import print_component, print_revision, print_schedule, print_upgrades, print_versions, short, when
from .registry import credentials_from_flags, registry_options


def _redis(ctx: CliContext) -> StoreClient:
    client = connect(ctx.redis_url())
    ctx.on_close(client.close)
    return client


@click.command("deploy")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check everything and report what would happen to running executions; store nothing.")
@click.option("--rollback", "rollback_to", type=int, metavar="REV", help="Make an earlier revision active again (no FILE).")
@click.option(
    "--upgrade-wait",
    type=Seconds(),
    default=5.0,
    show_default=True,
    help="Seconds to retry executions a runner holds before leaving them to the scheduler.",
)
@registry_options
@pass_ctx
def deploy_cmd(
    ctx: CliContext,
    file: str | None,
    dry_run: bool,
    rollback_to: int | None,
    upgrade_wait: float,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> int:
    """Deploy the components and routes of a deployment FILE as a new revision.

    Sources are resolved to digests (pulled and verified, or read from disk),
    workflow imports are checked against the deployed exports, and running
    workflows whose function got a new digest are replay-checked against it:
    each one that replays cleanly moves, each one that diverges stays.
    Exit status: 0 when deployed (with --dry-run: valid), 2 for a bad deployment (nothing changed), 3 for a
    --rollback REV that does not exist.
    """
    client = _redis(ctx)
    if rollback_to is not None:
        if file or dry_run:
            raise UsageError("--rollback REV takes no FILE and no --dry-run")
        revision, previous = rollback(client, rollback_to)
        if ctx.json_output:
            emit_json({"revision": revision.number, "previous": previous.number if previous else None})
        else:
            was = f" (was {previous.number})" if previous else ""
            echo(f"revision {revision.number} '{revision.name}' is active again{was}; running executions stay on their digests")
        return 0
    if not file:
        raise UsageError("give a deployment FILE (e.g. deployments/demo.yaml) or --rollback REV")
    spec = load_spec(Path(file))
    registry = RegistryOptions(insecure=insecure, credentials=credentials_from_flags(username, password_stdin))
    result = deploy(spec, client, ctx.data_dir, dry_run=dry_run, registry=registry, upgrade_wait_s=upgrade_wait)
    if ctx.json_output:
        emit_json(
            {
                "dry_run": dry_run,
                "revision": result.revision.number if result.revision else None,
                "previous": result.plan.previous.number if result.plan.previous else None,
                "components": [c.config.to_json() for c in result.plan.components],
                "schedules": [s.to_json() for s in result.plan.schedules],
                "upgrades": [r.to_json() for r in result.upgrades],
            }
        )
        return 0
    for comp in result.plan.components:
        print_component(comp.config)
    for route in spec.routes:
        echo(f"route {route.route.method} {route.route.path} -> {route.route.function}")
    for schedule in result.plan.schedules:
        print_schedule(schedule)
    print_upgrades(result.upgrades, dry_run=dry_run)
    previous = result.plan.previous
    if result.revision is None:
        echo(f"dry run: '{spec.name}' is valid; nothing was stored")
    else:
        was = f" (was {previous.number})" if previous else ""
        echo(f"revision {result.revision.number} '{spec.name}' is active{was}")
    return 0


@click.group("deployments")
def deployments_group() -> None:
    """List and show deployment revisions."""


@deployments_group.command("list")
@pass_ctx
def deployments_list(ctx: CliContext) -> None:
    """Every revision, newest first; the active one is marked."""
    store = DeploymentStore(_redis(ctx))
    active = store.active_number()
    revisions = [store.get(n) for n in reversed(store.numbers())]
    if ctx.json_output:
        emit_json({"active": active, "revisions": [_summary(r, active) for r in revisions]})
        return
    emit_table(
        ["revision", "name", "created", "components", "active"],
        [[r.number, r.name, when(r.created_at), ", ".join(f"{c.name}@{short(c.digest)}" for c in r.components), "*" if r.number == active else ""] for r in revisions],
    )


def _summary(revision: Revision, active: int | None) -> dict[str, object]:
    return {
        "revision": revision.number,
        "name": revision.name,
        "created_at": revision.created_at,
        "active": revision.number == active,
        "components": [{"name": c.name, "kind": c.kind, "digest": c.digest} for c in revision.components],
    }


@deployments_group.command("show")
@click.argument("revision", type=int, required=False)
@pass_ctx
def deployments_show(ctx: CliContext, revision: int | None) -> None:
    """One revision (default: the active one): components, digests, functions, routes."""
    store = DeploymentStore(_redis(ctx))
    active = store.active_number()
    number = revision if revision is not None else active
    if number is None:
        raise NotFoundError("nothing is deployed yet; run `platform deploy FILE.yaml`")
    found = store.get(number)
    if ctx.json_output:
        emit_json({**found.to_json(), "active": number == active})
    else:
        print_revision(found, active=number == active)


@click.command("functions")
@pass_ctx
def functions_cmd(ctx: CliContext) -> None:
    """The deployed functions: kind, component, digest and WIT signature."""
    redis = _redis(ctx)
    active = DeploymentStore(redis).active()
    if active is None:
        raise NotFoundError("nothing is deployed yet; run `platform deploy FILE.yaml`")
    routes = sorted(active.functions().values(), key=lambda r: r.ffqn)
    paused = paused_functions(redis)
    if ctx.json_output:
        emit_json(
            {
                "revision": active.number,
                "functions": [
                    {"ffqn": r.ffqn, "kind": r.kind, "component": r.component.name, "digest": r.component.digest,
                     "signature": r.signature.wit(), **r.signature.to_json(),
                     **({"paused": True} if r.ffqn in paused else {}),
                     **({"limits": r.component.limits.to_json()} if r.component.limits.any else {})}
                    for r in routes
                ],
            }
        )
        return
    emit_table(
        ["function", "kind", "component", "digest", "limits", "signature"],
        [[r.ffqn + (" (paused)" if r.ffqn in paused else ""), r.kind, r.component.name, short(r.component.digest),
          _limits_text(r.component.limits), r.signature.wit()] for r in routes],
    )


def _limits_text(limits: FunctionLimits) -> str:
    """`2 running, 5/s`, or `-` for none."""
    parts = ([f"{limits.max_running} running"] if limits.max_running is not None else []) + (
        [f"{limits.starts_per_second:g}/s"] if limits.starts_per_second is not None else []
    )
    return ", ".join(parts) or "-"


@click.command("upgrade")
@click.argument("ffqn")
@click.option("--to", "to", required=True, metavar="DIGEST", help="The deployed workflow component to move to (sha256:..., a unique prefix is enough).")
@click.option("--dry-run", is_flag=True, help="Replay-check and report; write nothing.")
@click.option("--force", is_flag=True, help="Move without replay-checking (divergent executions then fail).")
@click.option("--wait", "wait_s", type=Seconds(), default=5.0, show_default=True, help="Seconds to retry executions a runner holds.")
@pass_ctx
def upgrade_cmd(ctx: CliContext, ffqn: str, to: str, dry_run: bool, force: bool, wait_s: float) -> None:
    """Move the running executions of the workflow FFQN to component DIGEST where their logs replay cleanly.

    Executions that diverge stay on their digest, and the command still exits 0; it exits 2 when FFQN is not a
    workflow or DIGEST a prefix of several, 3 when FFQN or DIGEST is not deployed.
    """
    client = _redis(ctx)
    change = upgrade_target(DeploymentStore(client), ffqn, to, force=force)
    upgrader = Upgrader(client, ctx.data_dir)
    try:
        report = upgrader.upgrade(change, dry_run=dry_run, wait_s=wait_s, follow_up=False)
    finally:
        upgrader.close()
    if ctx.json_output:
        emit_json({"dry_run": dry_run, **report.to_json()})
    else:
        print_upgrades([report], dry_run=dry_run)


@click.command("versions")
@click.argument("ffqn", required=False)
@pass_ctx
def versions_cmd(ctx: CliContext, ffqn: str | None) -> None:
    """Per function, every digest with unfinished executions, how many, and the revision they came from."""
    if ffqn is not None:
        Ffqn.parse(ffqn)
    rows = versions(_redis(ctx), ffqn)
    if ctx.json_output:
        emit_json({"versions": [r.to_json() for r in rows]})
    else:
        print_versions(rows)


@click.command("fork")
@click.argument("execution_id")
@click.option("--at", "at", type=click.IntRange(min=1), required=True, help="How many events of its log to copy.")
@click.option("--component", help="Continue on this component (.wasm file, sha256: digest or oci:// reference).")
@click.option("--no-check", is_flag=True, help="Do not replay the copied events on the component first.")
@pass_ctx
def fork_cmd(ctx: CliContext, execution_id: str, at: int, component: str | None, no_check: bool) -> None:
    """Start a new execution from a copy of the first N events of EXECUTION_ID's log."""
    forked = fork_execution(_redis(ctx), ctx.data_dir, execution_id, at, component=component, check=not no_check)
    if ctx.json_output:
        emit_json(forked.to_json())
        return
    echo(forked.execution_id)
    notes = [f"{forked.copied} events copied from {forked.source_id}"]
    if forked.left_out:
        notes.append(f"{forked.left_out} bookkeeping events left out")
    if forked.restarted:
        notes.append(f"{len(forked.restarted)} unanswered children started again")
    if forked.delays:
        notes.append(f"{forked.delays} delays armed again")
    echo(f"{'; '.join(notes)}; running on {short(forked.digest)}")


@click.command("rerun")
@click.argument("execution_id")
@click.option("--component", help="Run on this component (.wasm file, sha256: digest or oci:// reference) instead of the deployed one.")
@pass_ctx
def rerun_cmd(ctx: CliContext, execution_id: str, component: str | None) -> None:
    """Start EXECUTION_ID's function again with the same params; prints the new id."""
    rerun = rerun_execution(_redis(ctx), ctx.data_dir, execution_id, component=component)
    if ctx.json_output:
        emit_json(rerun.to_json())
    else:
        echo(rerun.execution_id)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    for command in (deploy_cmd, deployments_group, functions_cmd, upgrade_cmd, versions_cmd, fork_cmd, rerun_cmd):
        cli.add_command(command)
