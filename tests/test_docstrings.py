"""The public API is documented: every exported function and class has a docstring naming the Dolmen errors it raises.

"Exported" is every name in an `__all__` of `dolmen.platform` (a subpackage's
`__init__` or a module) or of a `dolmen.gateway` module, read with `ast` and
followed through the package's own imports to the `def` or `class` that
defines it; a constant or type alias cannot carry a docstring and is left out.
The gateway has no package `__init__` and few `__all__`s: a gateway module
without one exports each of its public (not `_`-prefixed) top-level functions
and classes. A function whose own body raises one of the classes of
`platform/errors.py` or `gateway/errors.py` (`raise NotFoundError(...)`; not
what it calls, nor its nested functions) names that class in its docstring;
so does each public method of an exported class, and the class (or its
`__init__`/`__post_init__`) names what constructing it raises.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "platform"
GATEWAY = ROOT / "gateway"
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


ERRORS = frozenset(
    node.name for path in (PLATFORM / "errors.py", GATEWAY / "errors.py") for node in _parse(path).body
    if isinstance(node, ast.ClassDef)
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Exported:
    """A name of an `__all__` and where it is defined (`node` None for a constant or an alias)."""

    name: str
    listed_in: Path
    defined_in: Path
    node: Definition | None

    def where(self, node: ast.AST) -> str:
        return f"{self.defined_in.relative_to(ROOT)}:{getattr(node, 'lineno', 0)} ({self.name}, exported by {self.listed_in.relative_to(ROOT)})"


def _all(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return [str(ast.literal_eval(item)) for item in node.value.elts]  # type: ignore[attr-defined]
    return []


def _imported(path: Path, tree: ast.Module) -> dict[str, Path]:
    """Names this module imports from Dolmen's own modules (relative imports, `TYPE_CHECKING` ones too) -> their file."""
    out: dict[str, Path] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0 or not node.module:
            continue
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        target = base.joinpath(*node.module.split("."))
        source = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
        for alias in node.names:
            out[alias.asname or alias.name] = source
    return out


def _definition(path: Path, name: str, hops: int = 4) -> tuple[Path, Definition | None]:
    tree = _parse(path)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return path, node
    source = _imported(path, tree).get(name)
    if hops and source is not None and source.is_file():
        return _definition(source, name, hops - 1)
    return path, None


def _public(tree: ast.Module) -> list[str]:
    """The module's own public top-level functions and classes."""
    return [
        node.name for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    ]  # fmt: skip


def exported() -> Iterator[Exported]:
    """Every name of every `__all__` under `platform/` and `gateway/` (a gateway module without one: `_public`)."""
    for path in sorted([*PLATFORM.rglob("*.py"), *GATEWAY.rglob("*.py")]):
        tree = _parse(path)
        imports = _imported(path, tree)
        names = _all(tree)
        if not names and path.is_relative_to(GATEWAY):
            names = _public(tree)
        for name in names:
            defined_in, node = _definition(imports.get(name, path), name)
            yield Exported(name, path, defined_in, node)


def _raised(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The Dolmen errors a function's own body raises by name (nested functions and classes are their own)."""
    found: set[str] = set()
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = raised.attr if isinstance(raised, ast.Attribute) else getattr(raised, "id", None)
            if name in ERRORS:
                found.add(name)
        stack.extend(ast.iter_child_nodes(node))
    return found


def _documented(item: Exported) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    """The functions whose raises the check reads, each with the docstring that must name them."""
    node = item.node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        yield node, ast.get_docstring(node) or ""
    elif isinstance(node, ast.ClassDef):
        for member in node.body:
            if not isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if member.name in ("__init__", "__post_init__"):
                yield member, (ast.get_docstring(node) or "") + (ast.get_docstring(member) or "")
            elif not member.name.startswith("_"):
                yield member, ast.get_docstring(member) or ""


def test_every_exported_function_and_class_has_a_docstring() -> None:
    """Each name of an `__all__` that is a function or class is defined with a docstring."""
    items = [item for item in exported() if item.node is not None]
    assert len(items) > 100, "the walk found too few exported names: is the tree where this test expects it?"
    assert any(item.listed_in.is_relative_to(GATEWAY) for item in items), "the walk found nothing in gateway/"
    missing = [item.where(item.node) for item in items if item.node is not None and ast.get_docstring(item.node) is None]
    assert missing == [], "exported without a docstring:\n" + "\n".join(missing)


def test_docstrings_name_the_dolmen_errors_raised() -> None:
    """A Dolmen error an exported function (or method) raises itself is named in its docstring."""
    unnamed: list[str] = []
    for item in exported():
        for function, docstring in _documented(item):
            missing = sorted(error for error in _raised(function) if error not in docstring)
            if missing:
                unnamed.append(f"{item.where(function)} {function.name} raises {', '.join(missing)}")
    assert unnamed == [], "docstrings that do not name what their function raises:\n" + "\n".join(unnamed)
