"""`platform wit ext FILE.wasm [-o DIR]`: write the WIT a workflow imports."""

from __future__ import annotations

from pathlib import Path

from ..wit.ext import generate, host_wit
from .shared import CliContext, echo, emit_json


def write_ext_wit(ctx: CliContext, file: str, output: str | None) -> None:
    """Write (or print) the host package, the component's packages and their extensions.

    Into `output`/<package folder>/package.wit (printed when `output` is None); raises as `load_component_file`.
    """
    from .wasm import load_component_file

    loaded = load_component_file(ctx, file)
    exports = {iface.name: {n: f for n, f in iface.functions.items() if not n.startswith("[")} for iface in loaded.info.exports}
    packages = generate(exports)
    if output is None:
        if ctx.json_output:
            emit_json([{"folder": p.folder, "wit": p.text} for p in packages])
            return
        for package in packages:
            echo(f"// deps/{package.folder}/package.wit")
            echo(package.text)
        return
    root = Path(output)
    written = []
    for package in packages:
        folder = root / package.folder
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "package.wit"
        target.write_text(package.text)
        written.append(str(target))
    if ctx.json_output:
        emit_json({"written": written})
    else:
        for path in written:
            echo(f"wrote {path}")


def write_host_wit(output: str | None) -> None:
    """Print, or write to DIR/dolmen-workflow/package.wit, the `dolmen:workflow` host package."""
    if output is None:
        echo(host_wit())
        return
    target = Path(output) / "dolmen-workflow" / "package.wit"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(host_wit())
    echo(f"wrote {target}")
