"""Commands that work on component files directly: `wit`, `run`, `build`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..wasm.cache import ComponentCache
from ..build import build_python_guest
from ..stub_build import build_stub
from ..config import env_int
from ..deploy.fields import parse_duration
from ..errors import NotFoundError, UsageError
from ..ffqn import Ffqn
from ..wasm.activity_host import ActivityFailed, ActivityHost, ActivityLimits
from ..wasm.egress import EgressPolicy
from ..wasm.engine import EngineSettings, EpochTicker
from ..wasm.loader import ComponentLoader, LoadedComponent
from ..wit.codec import canonical_params
from ..wit.limits import MAX_VALUE_ENV
from ..wit.render import render_interface
from ..wit.types import ResultT
from .shared import CliContext, echo, emit_json, pass_ctx


def load_component_file(ctx: CliContext, path: str, ticker: EpochTicker | None = None) -> LoadedComponent:
    """Load a component file through the data directory's compiled cache.

    Raises `NotFoundError` when the file does not exist, `ComponentError` when it cannot be read or is no
    component (`ComponentLoader.load_file`).
    """
    loader = ComponentLoader(ComponentCache(ctx.data_dir), EngineSettings.for_kind("activity"), ticker)
    return loader.load_file(Path(path))


def parse_json_arg(text: str, what: str, *, example: str | None = None) -> object:
    """Parse a JSON command-line argument, naming the argument on failure.

    `-` reads the JSON from standard input and `@FILE` from a file (neither is
    JSON itself): params larger than a command line can hold (about 128 KiB).
    Raises `UsageError` naming `what` for a file it cannot read or text that is
    not JSON (`example` ends the message: what to pass instead).
    """
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{what}: cannot read {str(path)!r} ({exc}); pass @FILE with a readable UTF-8 JSON file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}); "
            + (example or """pass e.g. '["alice", 3]' (by position) or '{"name": "alice"}' (by name)""")
        ) from None


@click.command("wit", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True, metavar="FILE.wasm | ext FILE.wasm | host")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="For `wit ext`: folder to write packages into.")
@pass_ctx
def wit_cmd(ctx: CliContext, args: tuple[str, ...], output: str | None) -> None:
    """Show a component's exported functions (WIT signatures) and imports.

    `platform wit ext FILE.wasm` writes the extension WIT package a workflow
    imports to submit, await and schedule the component's functions;
    `platform wit host` writes Dolmen's own `dolmen:workflow` package.
    """
    if args[0] == "ext":
        if len(args) != 2:
            raise UsageError("usage: platform wit ext FILE.wasm [-o DIR]")
        from .ext import write_ext_wit

        write_ext_wit(ctx, args[1], output)
        return
    if args[0] == "host":
        if len(args) != 1:
            raise UsageError("usage: platform wit host [-o DIR]")
        from .ext import write_host_wit

        write_host_wit(output)
        return
    if len(args) != 1:
        raise UsageError("usage: platform wit FILE.wasm (or: platform wit ext FILE.wasm, platform wit host)")
    loaded = load_component_file(ctx, args[0])
    if ctx.json_output:
        emit_json(wit_json(loaded))
    else:
        echo(wit_text(loaded))


def wit_json(loaded: LoadedComponent) -> dict[str, Any]:
    """The machine-readable description printed by `platform wit --json`."""
    data = loaded.info.to_json()
    data["digest"] = loaded.digest
    functions: list[dict[str, Any]] = []
    for ffqn, fty in loaded.info.functions().items():
        reason = fty.unsupported_reason()
        entry = {"ffqn": str(ffqn), **fty.to_json(), "signature": fty.wit(), "invocable": reason is None}
        if reason:
            entry["reason"] = reason
        functions.append(entry)
    data["functions"] = functions
    return data


def wit_text(loaded: LoadedComponent) -> str:
    """The human description printed by `platform wit`: a summary, then the exports as WIT."""
    info = loaded.info
    lines = [f"// component {loaded.digest}"]
    functions = info.functions()
    invocable = {f: t for f, t in functions.items() if t.unsupported_reason() is None}
    lines.append("// exported functions (call one with `platform run FILE.wasm FFQN PARAMS`):")
    lines.extend(f"//   {f}: {t.wit()}" for f, t in invocable.items())
    if not invocable:
        lines.append("//   (none)")
    blocked = [f"{f}: {t.unsupported_reason()}" for f, t in functions.items() if f not in invocable]
    blocked += [f"{n}: a world-level function, which has no ffqn" for n in info.world_functions]
    if blocked:
        lines.append("// not invocable:")
        lines.extend(f"//   {b}" for b in blocked)
    lines.append("// imports:")
    lines.extend(f"//   {i.name}" for i in info.imports)
    lines.extend(f"//   {n} (world-level function)" for n in info.world_imports)
    if not info.imports and not info.world_imports:
        lines.append("//   (none)")
    package = None
    for iface in info.exports:
        parsed = iface.parsed
        if parsed is None:
            continue
        version = f"@{parsed.version}" if parsed.version else ""
        if f"{parsed.package_name}{version}" != package:
            package = f"{parsed.package_name}{version}"
            lines += ["", f"package {package};"]
        lines += ["", render_interface(parsed.interface, iface.functions, resources=iface.resources)]
    return "\n".join(lines)


class DurationMs(click.ParamType):
    """A duration as a deployment writes it (`250ms`, `10s`, `5m`, `1h`), or a bare number of milliseconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The duration in ms (at least 1); click's usage error (exit 2) otherwise."""
        if isinstance(value, int):
            ms = value
        else:
            text = str(value).strip()
            try:
                ms = int(text) if text.isdigit() else parse_duration(text)
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if ms < 1:
            self.fail("must be at least 1ms", param, ctx)
        return ms


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("ffqn")
@click.argument("params", default="[]")
@click.option(
    "--timeout",
    "timeout_ms",
    type=DurationMs(),
    default="60s",
    show_default=True,
    help="Time limit, as in a deployment (250ms, 10s, 5m) or a number of ms.",
)
@click.option(
    "--memory", "memory_mib", type=click.IntRange(min=1), default=512, show_default=True, help="Memory limit in MiB."
)
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="Grant an environment variable.")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="PATTERN",
    help="Allow outgoing HTTP requests to a host pattern, as allowed_hosts in a deployment "
    "(api.example.com, *.example.org:8443, localhost:*); without any, public hosts only.",
)
@pass_ctx
def run_cmd(
    ctx: CliContext,
    file: str,
    ffqn: str,
    params: str,
    timeout_ms: int,
    memory_mib: int,
    env: tuple[str, ...],
    allow_hosts: tuple[str, ...],
) -> None:
    """Call FFQN of FILE.wasm once with JSON PARAMS, without Redis, and print the result.

    PARAMS is a JSON array (by position) or object (by name). Outgoing HTTP
    requests may go to public hosts only, or with --allow-host only where a
    pattern allows. Exit status: 0 when the call returns, 1 when it returns
    an `err` result, traps or times out, 2 for bad params or patterns, 3 when
    FILE.wasm does not export FFQN.
    """
    name = Ffqn.parse(ffqn)
    grants = dict(_split_env(e) for e in env)
    egress = _egress(allow_hosts)
    ticker = EpochTicker()
    try:
        loaded = load_component_file(ctx, file, ticker)
        functions = loaded.info.functions()
        fn = functions.get(name)
        if fn is None:
            known = ", ".join(str(f) for f in functions) or "none"
            raise NotFoundError(f"{file} does not export {name}; it exports: {known}")
        reason = fn.unsupported_reason()
        if reason:
            raise UsageError(f"{name} cannot be called with JSON: {reason}")
        values = canonical_params(parse_json_arg(params, "PARAMS"), fn)
        limits = ActivityLimits(
            timeout_ms=timeout_ms,
            memory_bytes=memory_mib * 1024 * 1024,
            env=grants,
            max_value_bytes=env_int(MAX_VALUE_ENV),
            egress=egress,
            timeout_setting="--timeout",
        )
        try:
            outcome = ActivityHost(loaded).call(name, fn, values, limits)
        except ActivityFailed as failed:
            if ctx.json_output:
                emit_json({"failure": {"kind": failed.error.kind, "message": failed.error.message}, **failed.output})
            else:
                for stream in failed.output.values():
                    click.echo(stream, nl=False, err=True)
                click.echo(f"error: {failed.error.kind}: {failed.error.message}", err=True)
            raise SystemExit(1) from None
    finally:
        ticker.stop()
    if ctx.json_output:
        emit_json({"result": outcome.result, **outcome.output})
    else:
        for stream in outcome.output.values():
            click.echo(stream, nl=False, err=True)
        click.echo(json.dumps(outcome.result, ensure_ascii=False))
    if isinstance(fn.result, ResultT) and "err" in outcome.result:
        raise SystemExit(1)


def _egress(patterns: tuple[str, ...]) -> EgressPolicy:
    """The policy of `--allow-host` options: the default rules without any."""
    try:
        return EgressPolicy.allowing(patterns or None, grant="pass --allow-host {pattern} to allow it")
    except ValueError as exc:
        raise UsageError(f"--allow-host {exc}") from None


def _split_env(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise UsageError(f"--env '{text}' must look like NAME=VALUE")
    return name, value


@click.command("build")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("-w", "--world", required=True, help="The WIT world to build.")
@click.option("--wit", type=click.Path(exists=True), help="WIT folder [default: SRC/wit].")
@click.option("-m", "--module", default="app", show_default=True, help="The Python module with the exports.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write the component [default: SRC/build/<world>.wasm].")
@click.option("--stub", is_flag=True, help="Build a stub (SRC/wit only, no code; deploy it as `kind: stub`) with wasm-tools.")
@pass_ctx
def build_cmd(ctx: CliContext, src: str, world: str, wit: str | None, module: str, output: str | None, stub: bool) -> None:
    """Build a Python guest (SRC/app.py + SRC/wit) into a component with componentize-py.

    With --stub: a component that only declares the world's exports (SRC/wit), for
    functions deployed as `kind: stub`, whose results are supplied from outside.
    """
    out = Path(output) if output else Path(src) / "build" / f"{world}.wasm"
    if stub:
        result = build_stub(Path(src), world, wit=Path(wit) if wit else None, output=out)
    else:
        result = build_python_guest(Path(src), world, wit=Path(wit) if wit else None, module=module, output=out)
    if ctx.json_output:
        emit_json({"path": str(result.path), "cached": result.cached, "key": result.key})
    else:
        echo(f"{result.path} ({'cached' if result.cached else 'built'})")


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(wit_cmd)
    cli.add_command(run_cmd)
    cli.add_command(build_cmd)
