"""What makes a deployment consistent, decided without any I/O.

- every ffqn is exported by one component only;
- every interface a workflow imports is provided: by the host
  (`dolmen:workflow/*`, `wasi:*`) or by a deployed export with the same
  function types, in the same or a semver-compatible version
  (`ns:pkg-dolmen-ext/iface@v` extension interfaces name `ns:pkg/iface@v`);
- activities import nothing but WASI (the activity host gives WASI 0.2 and wasi:http);
- routes name deployed functions, and their path parameters are parameters of the function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..ffqn import Ffqn, InterfaceName
from ..wasm.introspect import InterfaceInfo
from ..wit.types import FunctionType, ResultT, TupleT, WitType
from ..model import ComponentKind, compatible_interface
from .spec import RouteEntry
from .yamlnodes import Location, Problem

HOST_PACKAGE = "dolmen:workflow"
HOST_VERSION = "1.0.0"
HOST_INTERFACES = ("types", "host")
EXT_SUFFIX = "-dolmen-ext"
EXT_FUNCTIONS = ("-submit", "-await-next", "-get", "-schedule")


@dataclass(frozen=True, slots=True)
class Described:
    """A component as the checks see it: what it exports and imports."""

    name: str
    kind: ComponentKind
    exports: Mapping[str, FunctionType]
    imports: tuple[InterfaceInfo, ...]
    location: Location
    world_imports: tuple[str, ...] = ()


def check_deployment(components: list[Described], routes: tuple[RouteEntry, ...]) -> list[Problem]:
    """Every problem of a set of described components and routes."""
    return check_exports(components) + check_imports(components) + check_routes(components, routes)


def check_exports(components: list[Described]) -> list[Problem]:
    """No ffqn twice; no component without a function to call."""
    problems: list[Problem] = []
    owner: dict[str, Described] = {}
    for comp in components:
        if not comp.exports:
            problems.append(
                Problem(comp.location, f"component '{comp.name}' exports no function of a WIT interface, so nothing could call it")
            )
        for ffqn in comp.exports:
            first = owner.get(ffqn)
            if first is not None:
                problems.append(
                    Problem(
                        comp.location,
                        f"component '{comp.name}' exports {ffqn}, which component '{first.name}' "
                        f"({first.location}) exports too; deploy one of them, or give one a new WIT "
                        "package version to run both side by side",
                    )
                )
            else:
                owner[ffqn] = comp
    return problems


def check_imports(components: list[Described]) -> list[Problem]:
    """Every import of every component is provided by the host or by a deployed export."""
    exports = _exports_by_interface(components)
    problems: list[Problem] = []
    for comp in components:
        for name in comp.world_imports:
            problems.append(
                Problem(comp.location, f"component '{comp.name}' imports the world-level function '{name}', which no host provides; import functions through an interface")
            )
        for iface in comp.imports:
            if comp.kind in ("stub", "external"):
                continue  # never instantiated: what it imports is never linked
            if comp.kind == "activity":
                if iface.name.startswith(f"{HOST_PACKAGE}/"):
                    problems.append(
                        Problem(comp.location, f"activity '{comp.name}' imports {iface.name}: it is a workflow; set `kind: workflow`")
                    )
                elif not iface.name.startswith("wasi:"):
                    problems.append(
                        Problem(
                            comp.location,
                            f"activity '{comp.name}' imports {iface.name}, which no host provides: activities get "
                            "WASI 0.2 with wasi:http only; call other functions from a workflow instead",
                        )
                    )
                continue
            problems += [Problem(comp.location, f"workflow '{comp.name}' {m}") for m in _workflow_import(iface, exports)]
    return problems


def check_routes(components: list[Described], routes: tuple[RouteEntry, ...]) -> list[Problem]:
    """Each route names a deployed, JSON-invocable function that has its path parameters."""
    functions = {ffqn: fty for comp in components for ffqn, fty in comp.exports.items()}
    problems: list[Problem] = []
    for entry in routes:
        route = entry.route
        fty = functions.get(route.function)
        where = entry.location.child("function", entry.location.line)
        if fty is None:
            similar = sorted(f for f in functions if Ffqn.parse(f).function == Ffqn.parse(route.function).function)
            hint = f"; did you mean {', '.join(similar[:3])}?" if similar else "; the deployment exports: " + ", ".join(sorted(functions)[:8])
            problems.append(Problem(where, f"route {route.method} {route.path} names {route.function}, which no component in this deployment exports{hint}"))
            continue
        reason = fty.unsupported_reason()
        if reason:
            problems.append(Problem(where, f"{route.function} cannot be invoked over HTTP: {reason}"))
        names = [n for n, _ in fty.params]
        for param in entry.params:
            if param not in names:
                problems.append(
                    Problem(
                        entry.location.child("path", entry.location.line),
                        f"path parameter '{{{param}}}' is not a parameter of {route.function} "
                        f"(its parameters: {', '.join(names) or 'none'})",
                    )
                )
    return problems


# ------------------------------------------------------------ imports


@dataclass(frozen=True, slots=True)
class _Provider:
    interface: InterfaceName
    component: str
    functions: dict[str, FunctionType]


def _exports_by_interface(components: list[Described]) -> dict[InterfaceName, _Provider]:
    out: dict[InterfaceName, _Provider] = {}
    for comp in components:
        for ffqn, fty in comp.exports.items():
            parsed = Ffqn.parse(ffqn)
            provider = out.setdefault(parsed.interface, _Provider(parsed.interface, comp.name, {}))
            provider.functions[parsed.function] = fty
    return out


def _workflow_import(iface: InterfaceInfo, exports: dict[InterfaceName, _Provider]) -> list[str]:
    """Why an interface imported by a workflow is not provided (empty when it is)."""
    if iface.name.startswith("wasi:"):
        return []
    parsed = InterfaceName.try_parse(iface.name)
    if parsed is None:
        return [f"imports '{iface.name}', which is not a WIT interface Dolmen can provide"]
    if parsed.package_name == HOST_PACKAGE:
        if parsed.version != HOST_VERSION or parsed.interface not in HOST_INTERFACES:
            return [
                f"imports {iface.name}, but this Dolmen provides {HOST_PACKAGE}/{{{','.join(HOST_INTERFACES)}}}@{HOST_VERSION}; "
                "rebuild the workflow with the WIT from `platform wit ext`"
            ]
        return []
    ext = parsed.package.endswith(EXT_SUFFIX)
    target = InterfaceName(parsed.namespace, parsed.package.removesuffix(EXT_SUFFIX), parsed.interface, parsed.version)
    best = compatible_interface(target, exports)
    if best is None:
        return [
            f"imports {iface.name}, but no component in this deployment exports {target} "
            f"(or a semver-compatible version); add the component that exports it"
        ]
    provider = exports[best]
    problems: list[str] = []
    for fname, imported in iface.functions.items():
        base, expected_of = (_ext_base(fname) if ext else (fname, None))
        if base is None:
            problems.append(f"imports {iface.name}.{fname}, which is not an extension function ({', '.join(EXT_FUNCTIONS)})")
            continue
        exported = provider.functions.get(base)
        if exported is None:
            problems.append(
                f"imports {iface.name}.{fname}, but {best} (exported by '{provider.component}') has no function '{base}'"
            )
            continue
        mismatch = _mismatch(imported, exported, expected_of)
        if mismatch:
            problems.append(
                f"imports {iface.name}.{fname} as {imported.wit()}, which does not match {best}.{base}: "
                f"{exported.wit()} exported by '{provider.component}' ({mismatch}); regenerate the workflow's WIT "
                "from the deployed component with `platform wit ext` and rebuild it"
            )
    return problems


def _ext_base(fname: str) -> tuple[str | None, str | None]:
    for suffix in EXT_FUNCTIONS:
        if fname.endswith(suffix) and len(fname) > len(suffix):
            return fname.removesuffix(suffix), suffix
    return None, None


def same_type(a: WitType | None, b: WitType | None) -> bool:
    """Structural equality (type names never take part in it)."""
    return a == b


def _param_types(fty: FunctionType) -> list[WitType]:
    return [t for _, t in fty.params]


def _mismatch(imported: FunctionType, exported: FunctionType, suffix: str | None) -> str | None:
    """Why `imported` (a direct or extension import) does not fit `exported`, or None."""
    want = _param_types(exported)
    have = _param_types(imported)
    if suffix is None:
        if have != want:
            return "the parameter types differ"
        if not same_type(imported.result, exported.result):
            return "the result types differ"
        return None
    if suffix in ("-submit", "-schedule"):
        return None if have[1:] == want else "the parameter types differ"
    ok = imported.result.ok if isinstance(imported.result, ResultT) else None
    if suffix == "-await-next":
        expected: WitType | None = exported.result
        if isinstance(ok, TupleT) and len(ok.elements) == 2:
            return None if same_type(ok.elements[1], expected) else "the result types differ"
        return None if expected is None else "the result types differ"
    return None if same_type(ok, exported.result) else "the result types differ"
