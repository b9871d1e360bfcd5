"""Build Python guest components with componentize-py, cached by input hash.

A guest folder holds `app.py` (plus any other modules) and a `wit/` folder.
The output is cached under a key made of every input file's bytes, the world
name and the componentize-py version, so unchanged guests are never rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .errors import ComponentError, ConfigError

_SKIP_DIRS = {"__pycache__", ".git", "build", ".pytest_cache"}


@dataclass(frozen=True, slots=True)
class GuestBuild:
    """A built component and whether it came from the cache."""

    path: Path
    cached: bool
    key: str


def componentize_py_version() -> str:
    try:
        return version("componentize-py")
    except PackageNotFoundError:
        raise ConfigError(
            "componentize-py is not installed; install it with `pip install componentize-py` "
            "(or `pip install 'dolmen[test]'`)"
        ) from None


def _inputs(src: Path, wit: Path) -> list[Path]:
    files: list[Path] = []
    for root in {src, wit}:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith((".wasm", ".pyc")))
    return sorted(set(files))


def build_key(src: Path, wit: Path, world: str, module: str) -> str:
    """The content hash identifying one build."""
    digest = hashlib.sha256()
    digest.update(f"componentize-py={componentize_py_version()}\0world={world}\0module={module}\0".encode())
    for path in _inputs(src, wit):
        rel = os.path.relpath(path, src)
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def build_python_guest(
    src: Path,
    world: str,
    *,
    wit: Path | None = None,
    module: str = "app",
    output: Path | None = None,
    cache_dir: Path | None = None,
) -> GuestBuild:
    """Build `src` (with `src/wit` unless `wit` is given) into a component."""
    src = Path(src).resolve()
    wit = (Path(wit) if wit else src / "wit").resolve()
    if not (src / f"{module}.py").is_file():
        raise ConfigError(f"{src / (module + '.py')} not found: a Python guest needs a module '{module}.py'")
    if not wit.exists():
        raise ConfigError(f"WIT folder {wit} not found: put the guest's WIT files in {src / 'wit'} or pass --wit")
    key = build_key(src, wit, world, module)
    cache_dir = Path(cache_dir or src / "build" / ".cache").resolve()
    cached = cache_dir / f"{key}.wasm"
    if not cached.is_file():
        _componentize(src, wit, world, module, cached)
        hit = False
    else:
        hit = True
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.resolve() != cached:
            shutil.copyfile(cached, output)
        return GuestBuild(output, hit, key)
    return GuestBuild(cached, hit, key)


def _componentize(src: Path, wit: Path, world: str, module: str, target: Path) -> None:
    componentize_py_version()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dolmen-build-") as tmp:
        out = Path(tmp) / "out.wasm"
        exe = shutil.which("componentize-py") or str(Path(sys.executable).with_name("componentize-py"))
        cmd = [exe, "-d", str(wit), "-w", world, "componentize", "-p", str(src), module, "-o", str(out)]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise ComponentError(
                f"componentize-py failed to build {src} (world '{world}'): "
                + " | ".join(detail[-8:])
            )
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(out, partial)
        os.replace(partial, target)
