"""Each subpackage of `dolmen.platform` exports its public names in `__all__`, loaded on first use."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Every subpackage of platform/, found on disk: a new one is checked without being listed here.
PACKAGES = sorted(init.parent.name for init in (ROOT / "platform").glob("*/__init__.py"))

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

# What each package's import alone loads of its own modules: nothing, however many it exports.
_LOADED_ALONE = """
import importlib, json, sys
name = "dolmen.platform." + sys.argv[1]
importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith(name + "."))))
"""


def test_every_subpackage_is_checked() -> None:
    """The packages found on disk include the CLI and the external workers' package, so the checks below cover them."""
    assert {"cli", "external", "store", "workflow", "runner", "deploy", "execution", "wasm", "wit"} <= set(PACKAGES)


def test_every_exported_name_resolves() -> None:
    """Every name in a subpackage's `__all__` is an attribute of it, and importing them all raises no cycle."""
    result = subprocess.run(
        [sys.executable, "-c", _CHECK % PACKAGES], capture_output=True, text=True, check=True, timeout=120
    )
    found = json.loads(result.stdout)
    for short in PACKAGES:
        assert found[short]["exported"], f"dolmen.platform.{short} exports nothing"
        assert found[short]["missing"] == [], f"dolmen.platform.{short}: {found[short]['missing']}"


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    """Name -> module (within the package) of the imports under `if TYPE_CHECKING:`."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1 and imp.module, ast.unparse(imp)
                found.update({alias.asname or alias.name: imp.module for alias in imp.names})
    return found


def _assigned(tree: ast.Module, name: str) -> ast.expr | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]:
            return node.value
    return None


def test_each_package_init_has_the_lazy_shape() -> None:
    """Each `__init__` imports none of its modules at run time, and `__all__`, `_EXPORTS` and the typed imports name the same things.

    The shape is store/__init__.py's: names typed under TYPE_CHECKING, `_EXPORTS` mapping each to its
    module, `__all__`, and `__getattr__ = lazy_exports(...)`.
    """
    wrong: list[str] = []
    for short in PACKAGES:
        path = ROOT / "platform" / short / "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        eager = [
            ast.unparse(node)
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module not in ("__future__", "typing", "_lazy")
        ]
        exports_node, all_node, getattr_node = (_assigned(tree, n) for n in ("_EXPORTS", "__all__", "__getattr__"))
        if eager:
            wrong.append(f"{short}: imports at run time: {eager}")
        if exports_node is None or all_node is None or getattr_node is None:
            wrong.append(f"{short}: needs _EXPORTS, __all__ and __getattr__ = lazy_exports(...)")
            continue
        exports = ast.literal_eval(exports_node)
        if sorted(ast.literal_eval(all_node)) != sorted(exports):
            wrong.append(f"{short}: __all__ and _EXPORTS differ")
        if _type_checking_imports(tree) != exports:
            wrong.append(f"{short}: the TYPE_CHECKING imports do not match _EXPORTS")
        if not (isinstance(getattr_node, ast.Call) and ast.unparse(getattr_node.func) == "lazy_exports"):
            wrong.append(f"{short}: __getattr__ is not lazy_exports(...)")
    assert wrong == [], "\n".join(wrong)


def test_importing_a_package_loads_none_of_its_modules() -> None:
    """The exports are lazy: importing `dolmen.platform.X` loads no module of X (the CLI's commands, the external tasks included)."""
    for short in PACKAGES:
        result = subprocess.run(
            [sys.executable, "-c", _LOADED_ALONE, short], capture_output=True, text=True, check=True, timeout=60
        )
        assert json.loads(result.stdout) == [], f"importing dolmen.platform.{short} loaded {result.stdout}"


def test_importing_the_store_package_loads_no_wasm_runtime() -> None:
    """The exports are lazy: importing `dolmen.platform.store` loads neither its modules nor wasmtime."""
    code = "import sys, dolmen.platform.store; print('wasmtime' in sys.modules, 'dolmen.platform.store.leases' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["False", "False"]


def test_the_cli_s_exports_are_its_root_group_and_context() -> None:
    """`dolmen.platform.cli.cli` is the root group (as the entry module's), whichever of the two is imported first."""
    code = (
        "import dolmen.platform.cli as package, dolmen.platform.cli.main as entry; "
        "from dolmen.platform.cli import CliContext, cli; "
        "print(cli is entry.cli, cli.name, CliContext.__module__, callable(entry.main))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["True", "cli", "dolmen.platform.cli.shared", "True"]


def test_platform_help_runs_with_warnings_as_errors() -> None:
    """`python -m dolmen.platform.cli.main --help` (what `platform up` starts its children with) and the `platform`
    script print the help; with warnings as errors, so runpy's warning about a package that imported its entry
    module first would fail it."""
    script = Path(sys.executable).parent / "platform"
    commands = [[sys.executable, "-W", "error", "-m", "dolmen.platform.cli.main", "--help"]]
    if script.exists():
        commands.append([str(script), "--help"])
    for command in commands:
        env = {**os.environ, "PYTHONWARNINGS": "error"}
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Usage: platform [OPTIONS] COMMAND [ARGS]..."), result.stdout
        assert result.stderr == ""
        assert "executions" in result.stdout and "up" in result.stdout
