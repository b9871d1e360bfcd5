"""Checks that wasmtime-py is the release that Dolmen's patches of its internals were written for.

`_wasmtime_fixes` and `_gil` replace private functions and ctypes bindings of
wasmtime-py; another release may rename, reshape or fix them, and a patch
applied to code it was not written for fails in ways far from its cause (a
wrong value lowered, a crash in C). Each module therefore checks the installed
version first, before it touches any private name, and refuses another one.
Each names its release in `WRITTEN_FOR_WASMTIME`; pyproject.toml pins the same
(tests/wasm/test_wasmtime_version.py checks that they agree).
"""

from __future__ import annotations

import importlib.metadata

from ..errors import WasmtimeVersionError


def installed_wasmtime() -> str:
    """The version of the installed `wasmtime` distribution ("not installed" when there is none)."""
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def check_wasmtime_version(found: str, patched: str, patches: str) -> None:
    """Raise `WasmtimeVersionError` unless `found` is `patched`, the exact release that the module `patches` was written for.

    Pure (the caller passes the installed version in), so it can be tested with
    any version string.
    """
    if found == patched:
        return
    raise WasmtimeVersionError(
        f"wasmtime {found} is installed, but {patches} patches the internals of wasmtime {patched}; "
        f"install that release (`pip install wasmtime=={patched}`, as pyproject.toml pins it), "
        f"or review the patches against wasmtime {found}, then change WRITTEN_FOR_WASMTIME in {patches} "
        "and the pin",
        found=found,
        patched=patched,
    )


__all__ = ["check_wasmtime_version", "installed_wasmtime"]
