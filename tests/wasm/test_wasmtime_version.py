"""The wasmtime-py patches refuse a wasmtime release other than the one they were written for."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dolmen.platform.errors import ConfigError, WasmtimeVersionError
from dolmen.platform.wasm import _gil, _wasmtime_fixes
from dolmen.platform.wasm._wasmtime_version import check_wasmtime_version, installed_wasmtime

REPO = Path(__file__).resolve().parents[2]


def test_the_release_written_for_passes() -> None:
    """The check returns quietly when the installed release is the patched one."""
    check_wasmtime_version("50.0.1", "50.0.1", "platform/wasm/_gil.py")


@pytest.mark.parametrize("found", ["50.0.2", "51.0.0", "49.0.0", "50.0.1rc1", "not installed"])
def test_another_release_is_refused_with_what_to_do(found: str) -> None:
    """Any other version, even a patch release, raises a configuration error naming both versions and the fixes."""
    with pytest.raises(WasmtimeVersionError) as caught:
        check_wasmtime_version(found, "50.0.1", "platform/wasm/_wasmtime_fixes.py")
    error = caught.value
    assert isinstance(error, ConfigError) and error.exit_code == 2
    assert (error.found, error.patched) == (found, "50.0.1")
    message = str(error)
    assert f"wasmtime {found} is installed" in message
    assert "platform/wasm/_wasmtime_fixes.py patches the internals of wasmtime 50.0.1" in message
    assert "pip install wasmtime==50.0.1" in message and "review the patches" in message


def test_the_patches_the_pin_and_the_installed_release_agree() -> None:
    """Both patch modules name the release pyproject.toml pins, and it is the one installed."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [re.fullmatch(r"wasmtime==(\S+)", line) for line in dependencies if line.startswith("wasmtime")]
    assert len(pins) == 1 and pins[0] is not None, f"wasmtime must be pinned exactly: {dependencies}"
    pinned = pins[0][1]
    assert _wasmtime_fixes.WRITTEN_FOR_WASMTIME == _gil.WRITTEN_FOR_WASMTIME == pinned == installed_wasmtime()


@pytest.mark.parametrize("module", ["_wasmtime_fixes", "_gil"])
def test_importing_a_patch_module_under_another_release_fails_before_patching(module: str) -> None:
    """With wasmtime reported as 51.0.0, importing either patch module raises the version error, not an AttributeError."""
    code = (
        "import importlib.metadata as md\n"
        "real = md.version\n"
        "md.version = lambda name: '51.0.0' if name == 'wasmtime' else real(name)\n"
        f"import dolmen.platform.wasm.{module}\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dolmen.platform.errors.WasmtimeVersionError: wasmtime 51.0.0 is installed"), result.stderr
    assert f"platform/wasm/{module}.py patches the internals of wasmtime 50.0.1" in last
