"""Each subpackage of `dolmen.platform` exports its public names in `__all__`, loaded on first use."""

from __future__ import annotations

import json
import subprocess
import sys

PACKAGES = ["store", "workflow", "runner", "deploy", "execution", "wasm", "wit", "external"]

# Run in a fresh interpreter, so that what an import loads is not hidden by earlier tests.
_CHECK = """
import importlib, json, sys
out = {}
for short in %r:
    name = "dolmen.platform." + short
    package = importlib.import_module(name)
    exported = list(package.__all__)
    missing = [n for n in exported if getattr(package, n, None) is None]
    out[short] = {"exported": exported, "missing": missing}
print(json.dumps(out))
"""


def test_every_exported_name_resolves() -> None:
    """Every name in a subpackage's `__all__` is an attribute of it, and importing them all raises no cycle."""
    result = subprocess.run(
        [sys.executable, "-c", _CHECK % PACKAGES], capture_output=True, text=True, check=True, timeout=120
    )
    found = json.loads(result.stdout)
    for short in PACKAGES:
        assert found[short]["exported"], f"dolmen.platform.{short} exports nothing"
        assert found[short]["missing"] == [], f"dolmen.platform.{short}: {found[short]['missing']}"


def test_importing_the_store_package_loads_no_wasm_runtime() -> None:
    """The exports are lazy: importing `dolmen.platform.store` loads neither its modules nor wasmtime."""
    code = "import sys, dolmen.platform.store; print('wasmtime' in sys.modules, 'dolmen.platform.store.leases' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["False", "False"]
