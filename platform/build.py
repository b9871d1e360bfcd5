"""Build Python guest components with componentize-py, cached by input hash.

A guest folder holds `app.py` (plus any other modules) and a `wit/` folder.
The output is cached under a key made of every input file's bytes, the world
name and the componentize-py version, so unchanged guests are never rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

from .errors import ComponentError, ConfigError
from .wit.ext import host_wit

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


def input_files(src: Path, wit: Path) -> list[Path]:
    """Every file of a build's sources and WIT (sorted; .wasm and .pyc left out): what its cache key covers."""
    found: list[Path] = []
    for root in {src, wit}:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            found.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith((".wasm", ".pyc")))
    for path in found:
        if not path.exists():
            # os.walk lists a symbolic link whose target is gone as a file.
            raise ConfigError(
                f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                "copy the files it should point to (e.g. `cp -rL`) or remove the link"
            )
    return sorted(set(found))


def _wit_texts(wit: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in wit.rglob("*.wit")] if wit.is_dir() else [wit.read_text()]


def _uses_unshipped(texts: list[str], name: str) -> bool:
    """Whether the WIT uses packages named `name`... (`wasi:`, `dolmen:workflow`) without defining any of them."""
    used = re.compile(rf"\b{re.escape(name)}")
    defined = re.compile(rf"^\s*package\s+{re.escape(name)}", re.MULTILINE)
    return any(used.search(t) for t in texts) and not any(defined.search(t) for t in texts)


def provided_packages(wit: Path) -> dict[str, dict[str, str]]:
    """The WIT packages `platform build` adds to `wit/deps/`: folder name -> {file name: text}.

    Dolmen's workflow host package when the WIT uses `dolmen:workflow`, and
    the WASI 0.2.0 packages (see `wit/wasi/README.md`) when it uses `wasi:`
    ones; each only if the WIT defines none of them itself.
    """
    if not wit.is_dir():
        return {}
    texts = _wit_texts(wit)
    added: dict[str, dict[str, str]] = {}
    if _uses_unshipped(texts, "dolmen:workflow"):
        added["dolmen-workflow"] = {"package.wit": host_wit()}
    if _uses_unshipped(texts, "wasi:"):
        added.update(wasi_wit())
    return added


def wasi_wit() -> dict[str, dict[str, str]]:
    """The shipped WASI 0.2.0 packages: folder name (`io@0.2.0`) -> {file name: text}."""
    root = files("dolmen.platform.wit").joinpath("wasi")
    return {
        folder.name: {f.name: f.read_text() for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".wit")}
        for folder in sorted(root.iterdir(), key=lambda f: f.name)
        if folder.is_dir()
    }


def with_provided_wit(wit: Path, scratch: Path) -> Path:
    """`wit`, or a copy of it with the packages of `provided_packages` added to `deps/`."""
    added = provided_packages(wit)
    if not added:
        return wit
    shutil.copytree(wit, scratch)
    for folder, texts in added.items():
        target = scratch / "deps" / folder
        target.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (target / name).write_text(text)
    return scratch


def build_key(src: Path, wit: Path, world: str, module: str) -> str:
    """The content hash identifying one build."""
    header = f"componentize-py={componentize_py_version()}\0world={world}\0module={module}\0"
    for folder, texts in sorted(provided_packages(wit).items()):
        header += folder + "\0" + "".join(name + "\0" + text for name, text in sorted(texts.items()))
    return content_key(header, src, input_files(src, wit))


def content_key(header: str, root: Path, files: list[Path]) -> str:
    """A build's cache key: SHA-256 of `header` and each file's path (relative to `root`) and bytes, 32 hex digits."""
    digest = hashlib.sha256(header.encode())
    for path in files:
        digest.update(os.path.relpath(path, root).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def install_atomically(built: Path, target: Path) -> None:
    """Copy `built` to `target` so that a reader sees the whole file or none (a crash leaves no half-written cache entry)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    os.close(fd)
    shutil.copyfile(built, partial)
    os.replace(partial, target)


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
        wit_dir = with_provided_wit(wit, Path(tmp) / "wit")
        cmd = [exe, "-d", str(wit_dir), "-w", world, "componentize", "-p", str(src), module, "-o", str(out)]
        # Without a Rust backtrace the report is the error and its causes only.
        env = {**os.environ, "RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise ComponentError(
                f"componentize-py failed to build {src} (world '{world}'): "
                + summarize_componentize_error(proc.stderr or proc.stdout)
            )
        install_atomically(out, target)


def summarize_componentize_error(text: str) -> str:
    """The error lines of a componentize-py failure, without Python or Rust stack frames."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("Stack backtrace:"):
            lines = lines[:i]
            break
    # componentize-py reports through a Python AssertionError: skip its traceback.
    for i, line in enumerate(lines):
        if line.startswith("AssertionError:"):
            lines = [line.removeprefix("AssertionError:").strip(), *lines[i + 1 :]]
            break
    kept = [line.strip() for line in lines if line.strip()]
    return " | ".join(kept[:12]) or "no error output"
