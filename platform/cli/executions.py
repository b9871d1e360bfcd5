"""Commands on executions: `call`, `executions ...`, `replay`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from ..wasm.cache import ComponentCache
from ..client import Client
from ..deploy.components import digest_filter, unknown_ffqn_hint
from ..errors import NotFoundError, UsageError
from ..ffqn import Ffqn
from ..ids import ExecutionId
from ..store.deployments import DeploymentStore
from ..store.listing import Cursor, ListFilter
from ..store.outcomes import OUTCOMES
from ..store.records import STATUSES, Event, ExecutionState
from ..priorities import CLASSES, DEFAULT
from ..tags import members as tag_members, parse_filter, parse_tags
from ..wasm.engine import EngineSettings
from ..wasm.loader import ComponentLoader, LoadedComponent
from ..workflow.sandbox import WorkflowSandbox
from ..workflow.verify import verify
from .shared import CliContext, Seconds, echo, emit_json, emit_table, pass_ctx
from .wasm import parse_json_arg


def _client(ctx: CliContext) -> Client:
    client = Client.connect(ctx.redis_url())
    ctx.on_close(client.close)
    return client


def _print_state(ctx: CliContext, state: ExecutionState) -> None:
    if ctx.json_output:
        emit_json(state.to_json())
        return
    data = state.to_json()
    rows = [[k, json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v] for k, v in data.items()]
    emit_table(["field", "value"], rows)


def _exit_for(state: ExecutionState) -> int:
    """0 for a returned value that is not an `err`, 1 otherwise (and while unfinished)."""
    outcome = state.outcome
    if outcome is None or outcome.failure is not None or outcome.continued_as is not None:
        return 1
    value = outcome.value
    if isinstance(value, dict) and set(value) == {"err"}:
        return 1
    return 0


@click.command("call")
@click.argument("ffqn")
@click.argument("params", default="[]")
@click.option("--no-wait", is_flag=True, help="Print the execution id and return at once.")
@click.option("--timeout", type=Seconds(), default=60.0, show_default=True, help="Seconds to wait for the result.")
@click.option("--id", "execution_id", help="Use this execution id (idempotent: the same id gives the same execution).")
@click.option("--idempotency-key", help="The same key gives the same execution.")
@click.option(
    "--tag", "tag_texts", multiple=True, metavar="KEY=VALUE",
    help="Tag the execution (repeatable); what it starts carries the same tags.",
)  # fmt: skip
@click.option(
    "--priority", type=click.Choice(CLASSES), default=DEFAULT, show_default=True,
    help="Its priority class: runners take higher classes first; what it starts has the same class.",
)  # fmt: skip
@pass_ctx
def call_cmd(
    ctx: CliContext,
    ffqn: str,
    params: str,
    no_wait: bool,
    timeout: float,
    execution_id: str | None,
    idempotency_key: str | None,
    tag_texts: tuple[str, ...],
    priority: str,
) -> None:
    """Submit FFQN with JSON PARAMS (array by position or object by name) and print its result.

    PARAMS may be `-` (read from standard input) or `@FILE` (read from a file).

    Exit status: 0 for a returned value, 1 for an `err` result, a failure, or no result within --timeout
    (seconds).
    """
    tags = parse_tags(tag_texts)
    client = _client(ctx)
    submitted = client.submit(
        ffqn, parse_json_arg(params, "PARAMS"), execution_id=execution_id, idempotency_key=idempotency_key, tags=tags,
        priority=priority,
    )
    if no_wait:
        if ctx.json_output:
            emit_json({"execution_id": submitted.execution_id, "created": submitted.created})
        else:
            echo(submitted.execution_id)
        return
    state = client.wait(submitted.execution_id, timeout)
    if state.status != "finished":
        if ctx.json_output:
            emit_json(state.to_json())
        click.echo(
            f"error: {submitted.execution_id} did not finish within {timeout:g}s (status {state.status}); "
            f"follow it with `platform executions show {submitted.execution_id}`",
            err=True,
        )
        raise SystemExit(1)
    if ctx.json_output:
        emit_json(state.to_json())
    elif state.outcome is not None and state.outcome.failure is not None:
        failure = state.outcome.failure
        click.echo(f"error: {submitted.execution_id} failed: {failure.kind}: {failure.message}", err=True)
    else:
        echo(json.dumps(state.outcome.value if state.outcome else None, ensure_ascii=False))
    raise SystemExit(_exit_for(state))


@click.group("executions")
def executions_group() -> None:
    """List, inspect and cancel executions."""


@executions_group.command("list")
@click.option("--ffqn", help="Only executions of this function.")
@click.option("--status", type=click.Choice(STATUSES), help="Only executions with this status.")
@click.option(
    "--outcome", type=click.Choice(OUTCOMES),
    help="Only finished executions that ended so: ok, err (an `err` result), continued, failed (any failure) or one failure kind.",
)  # fmt: skip
@click.option("--digest", help="Only executions pinned to this component digest (a unique prefix of a deployed one is enough, `sha256:` optional).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="Executions per page.")
@click.option("--cursor", help="Continue from a previous listing's `next` (or `previous`) cursor.")
@click.option(
    "--tag", "tag_texts", multiple=True, metavar="KEY=VALUE",
    help="Only executions with this tag (repeatable: all must match; the most selective first reads least).",
)  # fmt: skip
@pass_ctx
def list_cmd(
    ctx: CliContext,
    ffqn: str | None,
    status: str | None,
    outcome: str | None,
    digest: str | None,
    limit: int,
    cursor: str | None,
    tag_texts: tuple[str, ...],
) -> None:
    """Newest executions first."""
    if ffqn is not None:
        Ffqn.parse(ffqn)  # a typo lists nothing: say so instead
    client = _client(ctx)
    if digest is not None:
        # As the list prints digests (12 hex digits) and the HTTP API takes them: a unique prefix is enough.
        digest = digest_filter(DeploymentStore(client.redis), digest, field="--digest")
    selection = ListFilter(
        ffqn=ffqn, status=status, outcome=outcome, digest=digest, tags=tuple(parse_filter(tag_texts))  # type: ignore[arg-type]
    )
    start = Cursor.parse(cursor) if cursor else None
    page = client.executions.page(selection, start, limit)
    states = page.states
    # As the HTTP API answers an empty page: why an ffqn no revision has matches nothing (a typo?).
    hint = unknown_ffqn_hint(DeploymentStore(client.redis), ffqn) if ffqn is not None and not states else None
    if ctx.json_output:
        emit_json({"executions": [s.to_json() for s in states], **page.paging(), **({"hint": hint} if hint else {})})
        return
    rows = []
    for s in states:
        outcome = ""
        if s.outcome is not None:
            if s.outcome.failure:
                outcome = f"failed: {s.outcome.failure.kind}"
            elif s.outcome.continued_as:
                outcome = f"continued as {s.outcome.continued_as}"
            else:
                outcome = _short(s.outcome.value)
        status_text = f"{s.status} (paused)" if s.paused and s.status != "finished" else s.status
        rows.append([s.id, s.ffqn, status_text, s.digest[7:19], _time(s.created_at), outcome])
    headers = ["id", "function", "status", "digest", "created", "outcome"]
    if any(s.tags for s in states):
        # Last, so that a listing of untagged executions keeps its columns.
        headers.append("tags")
        for row, s in zip(rows, states):
            row.append(" ".join(tag_members(s.tags)))
    emit_table(headers, rows)
    if not rows and page.next is None:
        filtered = any(v is not None for v in (ffqn, status, outcome, digest)) or tag_texts or cursor
        echo("no execution matches these filters" if filtered else "no executions yet")
        if hint:
            echo(hint)
    if page.next is not None:
        echo(f"more: --cursor {page.next.token()}")


@executions_group.command("show")
@click.argument("execution_id")
@pass_ctx
def show_cmd(ctx: CliContext, execution_id: str) -> None:
    """One execution: status, digest, params, result or failure."""
    _print_state(ctx, _client(ctx).get(execution_id))


@executions_group.command("result")
@click.argument("execution_id")
@click.option(
    "--wait", "wait_s", type=Seconds(), default=0.0, help="Seconds to wait for it to finish [default: 0, no wait]."
)
@pass_ctx
def result_cmd(ctx: CliContext, execution_id: str, wait_s: float) -> None:
    """Print the result (exit 1 if it failed, returned an `err` result, or is unfinished)."""
    state = _client(ctx).wait(execution_id, wait_s)
    if ctx.json_output:
        emit_json(state.to_json())
    elif state.outcome is None:
        click.echo(f"{state.id} is {state.status}", err=True)
    elif state.outcome.failure is not None:
        click.echo(f"failed: {state.outcome.failure.kind}: {state.outcome.failure.message}", err=True)
    elif state.outcome.continued_as is not None:
        click.echo(f"{state.id} continued as {state.outcome.continued_as}, which is not created yet; wait longer", err=True)
    else:
        echo(json.dumps(state.outcome.value, ensure_ascii=False))
    raise SystemExit(_exit_for(state))


@executions_group.command("events")
@click.argument("execution_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until it finishes.")
@click.option("--timeout", type=Seconds(), default=300.0, show_default=True, help="With --follow: stop after this many seconds.")
@pass_ctx
def events_cmd(ctx: CliContext, execution_id: str, follow: bool, timeout: float) -> None:
    """The ordered event log."""
    client = _client(ctx)
    client.get(execution_id)
    if follow:
        # None marks a blocking read that waited in vain: nothing to print.
        events = (e for e in client.executions.follow(execution_id, timeout_s=timeout) if e is not None)
    else:
        events = iter(client.executions.events(execution_id))
    if ctx.json_output:
        if follow:
            for event in events:
                click.echo(json.dumps(event.to_json(), ensure_ascii=False))
        else:
            emit_json([e.to_json() for e in events])
        return
    if follow:
        # One line per event as it is appended: a table is laid out only once all of its rows are known.
        click.echo(f"{'#':>4}  {'at':<12}  {'type':<18}  details")
        for e in events:
            click.echo(f"{e.index:>4}  {_time(e.at):<12}  {e.type:<18}  {_details(e)}")
        return
    rows = [[e.index, _time(e.at), e.type, _details(e)] for e in events]
    emit_table(["#", "at", "type", "details"], rows)


@executions_group.command("cancel")
@click.argument("execution_id")
@click.option(
    "--reason", default="cancelled by request", show_default=True,
    help="Recorded in its `cancel_requested` event (and as its failure's message when it is cancelled at once).",
)  # fmt: skip
@pass_ctx
def cancel_cmd(ctx: CliContext, execution_id: str, reason: str) -> None:
    """Cancel an execution (and, for a workflow, its unfinished children).

    A workflow that continued as new is cancelled where its chain is now.
    """
    client = _client(ctx)
    outcome, target = client.executions.cancel_chain(ExecutionId.parse(execution_id).value, reason)
    messages = {
        "cancelled": "cancelled",
        "requested": "cancellation requested; a runner will cancel its children and finish it",
        "already": "cancellation was already requested",
        "finished": "it had already finished; nothing to cancel",
    }
    if ctx.json_output:
        emit_json({"execution_id": target, "result": outcome, **({"chain": execution_id} if target != execution_id else {})})
    elif target != execution_id:
        echo(f"{target} (where the chain of {execution_id} is now): {messages.get(outcome, outcome)}")
    else:
        echo(f"{execution_id}: {messages.get(outcome, outcome)}")


def _pause_or_resume(ctx: CliContext, action: str, execution_id: str | None, ffqn: str | None) -> None:
    """`executions pause` and `executions resume`: of one execution, or of every execution of `ffqn`."""
    if (execution_id is None) == (ffqn is None):
        raise UsageError(
            f"give one execution id (platform executions {action} E_...) or --ffqn FFQN for a whole function, not both"
        )
    client = _client(ctx)
    if ffqn is not None:
        changed = client.pause_function(ffqn) if action == "pause" else client.resume_function(ffqn)
        if ctx.json_output:
            emit_json({"ffqn": ffqn, action: "done" if changed else "already"})
        elif action == "pause":
            done = "paused; runners take none of its executions until it is resumed"
            echo(f"{ffqn}: " + (done if changed else "was already paused"))
        else:
            echo(f"{ffqn}: " + ("resumed; runners take its executions again" if changed else "was not paused"))
        return
    execution_id = execution_id or ""
    result = client.pause(execution_id) if action == "pause" else client.resume(execution_id)
    if ctx.json_output:
        emit_json({**result.to_json(action), **({"chain": execution_id} if result.execution_id != execution_id else {})})
        return
    where = result.execution_id
    if result.execution_id != execution_id:
        where += f" (where the chain of {execution_id} is now)"
    if not result.changed:
        echo(f"{where}: " + ("was already paused" if action == "pause" else "was not paused"))
    elif action == "pause":
        echo(f"{where}: paused; no runner takes it until it is resumed (what runs now finishes its step)")
    else:
        echo(f"{where}: resumed" + ("; queued to run" if result.queued else ""))


@executions_group.command("pause")
@click.argument("execution_id", required=False)
@click.option("--ffqn", help="Pause every execution of this function instead, present and future.")
@pass_ctx
def pause_cmd(ctx: CliContext, execution_id: str | None, ffqn: str | None) -> None:
    """Pause an execution: no runner takes it until it is resumed.

    A running activity finishes its attempt and a running workflow its step,
    up to its next wait; responses and timers that arrive meanwhile are
    logged and take effect on resume. With --ffqn, runners take no execution
    of that function until it is resumed. Pausing twice changes nothing.
    """
    _pause_or_resume(ctx, "pause", execution_id, ffqn)


@executions_group.command("resume")
@click.argument("execution_id", required=False)
@click.option("--ffqn", help="Resume a function paused as a whole instead.")
@pass_ctx
def resume_cmd(ctx: CliContext, execution_id: str | None, ffqn: str | None) -> None:
    """Resume a paused execution (queued again when it has work), or with --ffqn a paused function."""
    _pause_or_resume(ctx, "resume", execution_id, ffqn)


@executions_group.command("complete")
@click.argument("execution_id")
@click.argument("value")
@pass_ctx
def complete_cmd(ctx: CliContext, execution_id: str, value: str) -> None:
    """Supply the result of a stub execution (a function deployed as `kind: stub`), which finishes it.

    VALUE is the result as JSON, in the form `executions result` prints (a WIT
    `result` as {"ok": ...} or {"err": ...}), or `-` (standard input) or `@FILE`.
    It is checked against the function's WIT result type and recorded once:
    the same value again changes nothing (exit 0), another one is refused (exit 1).
    """
    client = _client(ctx)
    parsed = parse_json_arg(
        value, "VALUE", example="""pass e.g. '"approved"', '{"ok": 42}' or '{"err": "no"}' (quoted for the shell)"""
    )
    completed = client.complete(execution_id, parsed)
    if ctx.json_output:
        emit_json({"execution_id": completed.execution_id, "recorded": completed.recorded})
    elif completed.recorded:
        echo(f"{completed.execution_id}: result recorded; it has finished")
    else:
        echo(f"{completed.execution_id}: that result was already recorded; nothing changed")


@click.command("replay")
@click.argument("execution_id")
@click.option("--component", "component", help="Replay on this component file (or digest) instead of its own.")
@pass_ctx
def replay_cmd(ctx: CliContext, execution_id: str, component: str | None) -> None:
    """Replay a workflow's log against its component (or another) without writing anything.

    Prints `ok (N events)` or the first divergence; exit 0 when clean, 1 otherwise.
    """
    client = _client(ctx)
    state = client.get(execution_id)
    if state.kind != "workflow":
        raise UsageError(f"{execution_id} is an {state.kind}; only workflows are replayed")
    loaded = _load_workflow(ctx, client, component or state.digest)
    verdict = verify(WorkflowSandbox(), loaded, state.id, state.ffqn, client.executions.events(state.id))
    if ctx.json_output:
        emit_json({"execution_id": state.id, "component_digest": loaded.digest, **verdict.to_json()})
    else:
        echo(verdict.describe())
    raise SystemExit(0 if verdict.ok else 1)


def _load_workflow(ctx: CliContext, client: Client, ref: str) -> LoadedComponent:
    cache = ComponentCache(ctx.data_dir)
    loader = ComponentLoader(cache, EngineSettings.for_kind("workflow"), fetch=DeploymentStore(client.redis).fetcher(cache))
    if ref.startswith("sha256:"):
        return loader.load(ref)
    if ref.startswith("oci://"):
        from ...registry.pull import fetch_component

        return loader.load(fetch_component(ref, cache).component_digest)
    path = Path(ref)
    if not path.is_file():
        raise NotFoundError(f"component '{ref}' not found: give a .wasm file, a sha256: digest or an oci:// reference")
    return loader.load_file(path)


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def _details(event: Event) -> str:
    data = dict(event.data)
    data.pop("component_digest", None)
    return _short(data, 100)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(call_cmd)
    cli.add_command(executions_group)
    cli.add_command(replay_cmd)
