"""Every third-party module the code imports comes from a requirement pyproject.toml declares.

A module that arrives only as another package's dependency (requests through
oras, jsonschema through openapi-spec-validator) works until that package
drops it; these tests name such an import when it is added.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUR_TOP_MODULES = {"dolmen", "platform", "registry", "gateway", "tests", "benchmarks"}


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def declared(*extras: str) -> set[str]:
    """The distributions named by the project's dependencies, plus those of `extras`."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    # A requirement's name is its leading run of name characters (PEP 508), before extras and versions.
    return {_normal(re.split(r"[^A-Za-z0-9._-]", line.strip(), maxsplit=1)[0]) for line in lines}


def _optional(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside a `try` that catches ImportError: optional by design."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            handler.type is not None and "ImportError" in ast.unparse(handler.type) for handler in node.handlers
        ):
            lines |= {inner.lineno for statement in node.body for inner in ast.walk(statement) if hasattr(inner, "lineno")}
    return lines


def third_party_imports(*folders: str) -> Iterator[tuple[str, str]]:
    """(top-level module, file:line) of each non-optional import of a module outside the standard library and ours.

    Guest sources (`*/components/*`) are skipped: they import their generated WIT bindings.
    """
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            if "components" in path.relative_to(REPO).parts:
                continue
            tree = ast.parse(path.read_text(), str(path))
            optional = _optional(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in OUR_TOP_MODULES or node.lineno in optional:
                        continue
                    yield top, f"{path.relative_to(REPO)}:{node.lineno}"


def undeclared(folders: tuple[str, ...], allowed: set[str]) -> list[str]:
    providers = md.packages_distributions()
    problems = []
    for top, where in third_party_imports(*folders):
        distributions = {_normal(name) for name in providers.get(top, [])}
        if not distributions & allowed:
            problems.append(f"{where}: `{top}` (from {sorted(distributions) or 'no installed distribution'})")
    return problems


def test_the_packages_import_only_declared_dependencies() -> None:
    """platform/, registry/ and gateway/ import only what [project] dependencies declare."""
    assert undeclared(("platform", "registry", "gateway"), declared()) == [], "declare these in [project] dependencies"


def test_tests_and_benchmarks_import_only_declared_dependencies() -> None:
    """tests/ and benchmarks/ import only what the dependencies and the test extra declare."""
    assert undeclared(("tests", "benchmarks"), declared("test")) == [], "declare these in the test extra"


def test_an_import_that_only_arrives_through_another_package_is_reported() -> None:
    """The check names a module that is installed but not declared (requests, say, without its line)."""
    allowed = declared() - {"requests"}
    assert any("registry/transport.py" in problem and "`requests`" in problem for problem in undeclared(("registry",), allowed))
