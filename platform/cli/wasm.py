"""Commands that work on component files directly: `wit`, `run`, `build`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ...registry.cache import ComponentCache
from ..build import build_python_guest
from ..errors import NotFoundError, UsageError
from ..ffqn import Ffqn
from ..wasm.activity_host import ActivityFailed, ActivityHost, ActivityLimits
from ..wasm.engine import EngineSettings, EpochTicker
from ..wasm.loader import ComponentLoader, LoadedComponent
from ..wit.codec import canonical_params
from ..wit.render import render_interface
from ..wit.types import ResultT
from .context import CliContext, echo, emit_json, pass_ctx


def load_component_file(ctx: CliContext, path: str, ticker: EpochTicker | None = None) -> LoadedComponent:
    """Load a component file through the data directory's compiled cache."""
    loader = ComponentLoader(ComponentCache(ctx.data_dir), EngineSettings.for_kind("activity"), ticker)
    return loader.load_file(Path(path))


def parse_json_arg(text: str, what: str) -> object:
    """Parse a JSON command-line argument, naming the argument on failure."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}); "
            """pass e.g. '["alice", 3]' (by position) or '{"name": "alice"}' (by name)"""
        ) from None


@click.command("wit", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True, metavar="FILE.wasm | ext FILE.wasm")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="For `wit ext`: folder to write packages into.")
@pass_ctx
def wit_cmd(ctx: CliContext, args: tuple[str, ...], output: str | None) -> None:
    """Show a component's exported functions (WIT signatures) and imports.

    `platform wit ext FILE.wasm` writes the extension WIT package a workflow
    imports to submit, await and schedule the component's functions.
    """
    if args[0] == "ext":
        if len(args) != 2:
            raise UsageError("usage: platform wit ext FILE.wasm [-o DIR]")
        from .ext import write_ext_wit

        write_ext_wit(ctx, args[1], output)
        return
    if len(args) != 1:
        raise UsageError("usage: platform wit FILE.wasm (or: platform wit ext FILE.wasm)")
    loaded = load_component_file(ctx, args[0])
    info = loaded.info
    if ctx.json_output:
        data = info.to_json()
        data["digest"] = loaded.digest
        data["functions"] = [
            {"ffqn": str(f), **fty.to_json(), "signature": fty.wit(), "invocable": fty.unsupported_reason() is None}
            for f, fty in info.functions().items()
        ]
        emit_json(data)
        return
    echo(f"// component {loaded.digest}")
    for iface in info.exports:
        parsed = iface.parsed
        if parsed is None:
            continue
        version = f"@{parsed.version}" if parsed.version else ""
        echo(f"// export {iface.name}")
        echo(f"package {parsed.package_name}{version};")
        echo(render_interface(parsed.interface, iface.functions, resources=iface.resources))
    if info.world_functions:
        echo(f"// world-level functions (not invocable by ffqn): {', '.join(info.world_functions)}")
    echo("// imports:")
    for iface in info.imports:
        echo(f"//   {iface.name}")


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("ffqn")
@click.argument("params", default="[]")
@click.option("--timeout", "timeout_ms", type=int, default=60_000, show_default=True, help="Time limit in ms.")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE", help="Grant an environment variable.")
@pass_ctx
def run_cmd(ctx: CliContext, file: str, ffqn: str, params: str, timeout_ms: int, env: tuple[str, ...]) -> None:
    """Call FFQN of FILE.wasm once with JSON PARAMS, without Redis, and print the result.

    Exit status 0 when the call returns (an `err` result prints and exits 1).
    """
    name = Ffqn.parse(ffqn)
    ticker = EpochTicker()
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
    grants = dict(_split_env(e) for e in env)
    try:
        outcome = ActivityHost(loaded).call(name, fn, values, ActivityLimits(timeout_ms=timeout_ms, env=grants))
    except ActivityFailed as failed:
        if ctx.json_output:
            emit_json({"failure": {"kind": failed.error.kind, "message": failed.error.message}, **failed.output})
        else:
            for stream in failed.output.values():
                click.echo(stream, nl=False, err=True)
            click.echo(f"error: {failed.error.kind}: {failed.error.message}", err=True)
        ticker.stop()
        raise SystemExit(1) from None
    ticker.stop()
    if ctx.json_output:
        emit_json({"result": outcome.result, **outcome.output})
    else:
        for stream in outcome.output.values():
            click.echo(stream, nl=False, err=True)
        click.echo(json.dumps(outcome.result, ensure_ascii=False))
    if isinstance(fn.result, ResultT) and "err" in outcome.result:
        raise SystemExit(1)


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
@pass_ctx
def build_cmd(ctx: CliContext, src: str, world: str, wit: str | None, module: str, output: str | None) -> None:
    """Build a Python guest (SRC/app.py + SRC/wit) into a component with componentize-py."""
    out = Path(output) if output else Path(src) / "build" / f"{world}.wasm"
    result = build_python_guest(Path(src), world, wit=Path(wit) if wit else None, module=module, output=out)
    if ctx.json_output:
        emit_json({"path": str(result.path), "cached": result.cached, "key": result.key})
    else:
        echo(f"{result.path} ({'cached' if result.cached else 'built'})")


def register(cli: click.Group) -> None:
    cli.add_command(wit_cmd)
    cli.add_command(run_cmd)
    cli.add_command(build_cmd)
