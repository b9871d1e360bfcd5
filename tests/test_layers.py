"""The code's layers point one way: every module imports only its own layer's packages and those below.

From the bottom: the core model (errors, ids, names, the resolved deployment,
WIT types) imports nothing else of Dolmen; then the WIT codec and small
helpers; the wasm host and settings; the store and the OCI registry; what the
engine shares (components, retry decisions); the workflow replayer; the
runner and deployments; the services (scheduler, external tasks, supervisor);
the gateway; the CLI on top. Imports are read with `ast`, so a lazy import
inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"platform": "dolmen.platform", "registry": "dolmen.registry", "gateway": "dolmen.gateway"}

# Lowest first. A unit is a subpackage (`dolmen.platform.store`), a single module
# (`dolmen.platform.errors`) or a top folder (`dolmen.registry`); the longest prefix wins.
LAYERS: list[tuple[str, ...]] = [
    (  # the core model
        "dolmen.platform._version", "dolmen.platform.errors", "dolmen.platform.ids", "dolmen.platform.ffqn",
        "dolmen.platform.cron", "dolmen.platform.backoff", "dolmen.platform.model", "dolmen.platform.wit.types",
        "dolmen.platform.surface", "dolmen.platform._lazy",
    ),
    (  # WIT values and small helpers over the core
        "dolmen.platform.wit", "dolmen.platform.priorities", "dolmen.platform.tags", "dolmen.platform.log",
        "dolmen.platform.metrics", "dolmen.platform.maxmemory", "dolmen.platform.shutdown",
    ),
    ("dolmen.platform.config", "dolmen.platform.wasm", "dolmen.platform.build"),
    ("dolmen.platform.store", "dolmen.registry", "dolmen.platform.stub_build"),
    ("dolmen.platform.execution",),
    ("dolmen.platform.workflow", "dolmen.platform.client"),
    ("dolmen.platform.runner", "dolmen.platform.deploy", "dolmen.platform.cron_firing"),
    ("dolmen.platform.external", "dolmen.platform.scheduler", "dolmen.platform.supervisor"),
    ("dolmen.gateway", "dolmen.platform.embedded"),
    ("dolmen.platform.cli",),
]  # fmt: skip

# Third-party libraries that only their adapter layer may import.
ADAPTERS = {"redis": ("dolmen.platform.store",)}

# redis-py's client types under the store's own names: above `store/`, the handle is `StoreClient`/`AsyncStoreClient`.
REDIS_TYPES = {
    f"dolmen.platform.store.{path}"
    for name in ("Redis", "AsyncRedis")
    for path in (name, f"connection.{name}")
}


@dataclass(frozen=True, slots=True)
class Import:
    """One import of a Dolmen module (or of a third-party top-level package) by a module."""

    module: str
    imported: str
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = FOLDERS[parts[0]].split(".") + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            # `from . import keys` imports the module `keys`; `from .keys import state` the module `.keys`.
            found += [Import(module, f"{target}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
    return found


def _all_imports() -> list[Import]:
    return [imp for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py")) for imp in _imports(path)]


def _unit(module: str) -> str | None:
    """The layer unit `module` belongs to: the longest prefix in `LAYERS`, None outside Dolmen."""
    units = [unit for layer in LAYERS for unit in layer if module == unit or module.startswith(unit + ".")]
    return max(units, key=len) if units else None


def _rank(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def test_every_module_has_a_layer() -> None:
    """Each module of the three folders belongs to a unit of `LAYERS` (a new package must be placed)."""
    missing = sorted({imp.module for imp in _all_imports() if _unit(imp.module) is None})
    assert missing == [], f"add these modules' package to LAYERS in {__file__}: {missing}"


def test_imports_point_down() -> None:
    """A module imports only its own unit, other units of its layer below, and layers below its own.

    Two units of the same layer never import each other (store and registry, runner and deploy), except
    in the core, whose modules are one unit split by concept.
    """
    wrong: list[str] = []
    for imp in _all_imports():
        mine, theirs = _unit(imp.module), _unit(imp.imported)
        if mine is None or theirs is None or mine == theirs:
            continue
        if _rank(theirs) >= _rank(mine) and not {mine, theirs} <= set(LAYERS[0]):
            wrong.append(f"{imp.module}:{imp.line} imports {imp.imported} ({theirs} is not below {mine})")
    assert wrong == [], "\n".join(wrong)


def test_core_model_imports_only_the_core() -> None:
    """The core model (errors, ids, ffqn, cron, model, wit.types) imports nothing else of Dolmen."""
    core = LAYERS[0]
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        if _unit(imp.module) in core and (unit := _unit(imp.imported)) is not None and unit not in core
    ]
    assert wrong == [], "\n".join(wrong)


def test_workflow_never_imports_the_runner() -> None:
    """workflow/ reaches the runner only through its ports (`Spawner`, `InlineRunner`), never by import."""
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        if _unit(imp.module) == "dolmen.platform.workflow" and _unit(imp.imported) == "dolmen.platform.runner"
    ]
    assert wrong == [], "\n".join(wrong)


def test_registry_imports_only_the_core_and_wasm() -> None:
    """registry/ does OCI: below it only the core model and the wasm host (compiled-artifact cache, loading)."""
    allowed = {*LAYERS[0], "dolmen.platform.wasm", "dolmen.registry"}
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        if _unit(imp.module) == "dolmen.registry" and (unit := _unit(imp.imported)) is not None and unit not in allowed
    ]
    assert wrong == [], "\n".join(wrong)


def test_third_party_adapters_stay_in_their_layer() -> None:
    """Only store/ imports redis: nothing above it sees a Redis type or exception."""
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        for library, owners in ADAPTERS.items()
        if imp.imported.split(".")[0] == library and not any(imp.module.startswith(owner) for owner in owners)
    ]
    assert wrong == [], "\n".join(wrong)


def test_above_the_store_the_handle_has_the_stores_name() -> None:
    """Above store/, the client is a `StoreClient` (or `AsyncStoreClient`): no module imports the Redis-named aliases."""
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported} (use dolmen.platform.store.connection.StoreClient)"
        for imp in _all_imports()
        if imp.imported in REDIS_TYPES and not imp.module.startswith("dolmen.platform.store")
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_import() -> None:
    """The check itself works: an import from store into the runner is reported as pointing up."""
    assert _rank(_unit("dolmen.platform.runner.process") or "") > _rank(_unit("dolmen.platform.store.leases") or "")
    assert _unit("dolmen.platform.wit.types") == "dolmen.platform.wit.types"
    assert _unit("dolmen.platform.wit.codec") == "dolmen.platform.wit"
