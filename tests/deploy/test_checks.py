"""The pure deployment checks: duplicate exports, unsatisfied imports, routes."""

from __future__ import annotations

from dolmen.platform.deploy.checks import Described, check_deployment, check_exports, check_imports, check_routes
from dolmen.platform.model import RouteSpec
from dolmen.platform.deploy.spec import RouteEntry
from dolmen.platform.deploy.yamlnodes import Location
from dolmen.platform.wasm.introspect import InterfaceInfo
from dolmen.platform.wit.types import FunctionType, Prim, RecordT, ResourceT, ResultT, TupleT, VariantT

U64 = Prim("u64")
STR = Prim("string")
DOUBLE = FunctionType((("x", U64),), U64)
POINT = RecordT((("x", U64), ("y", U64)), "point")
WHERE = FunctionType((("p", POINT),), STR)
JOIN_SET = ResourceT("borrow", "join-set")
ERR = VariantT((("all-processed", None),), "await-next-error")


def comp(name: str, kind: str, exports: dict[str, FunctionType], imports: tuple[InterfaceInfo, ...] = (), line: int = 3) -> Described:
    return Described(name, kind, exports, imports, Location("d.yaml", line, f"components[{line}]"))  # type: ignore[arg-type]


ACT = comp("act", "activity", {"t:act/basic@1.2.0.double": DOUBLE, "t:act/basic@1.2.0.where": WHERE}, (InterfaceInfo("wasi:http/outgoing-handler@0.2.0"),))


def wf(*imports: InterfaceInfo) -> Described:
    return comp("flow", "workflow", {"t:wf/flows@1.0.0.run": FunctionType((), U64)}, imports, line=9)


HOST = (InterfaceInfo("dolmen:workflow/types@1.0.0"), InterfaceInfo("dolmen:workflow/host@1.0.0"), InterfaceInfo("wasi:random/random@0.2.9"))


def messages(problems: list) -> str:
    return "\n".join(str(p) for p in problems)


def test_a_consistent_deployment_has_no_problems() -> None:
    """A workflow whose direct and extension imports match the activity's exports passes."""
    ext = InterfaceInfo(
        "t:act-dolmen-ext/basic@1.0.0",
        {
            "double-submit": FunctionType((("join-set", JOIN_SET), ("x", U64)), STR),
            "double-await-next": FunctionType((("join-set", JOIN_SET),), ResultT(TupleT((STR, U64)), ERR)),
            "double-get": FunctionType((("execution-id", STR),), ResultT(U64, ERR)),
            "double-schedule": FunctionType((("schedule-at", ERR), ("x", U64)), STR),
        },
    )
    direct = InterfaceInfo("t:act/basic@1.0.0", {"where": FunctionType((("point", RecordT((("x", U64), ("y", U64)), None)),), STR)})
    assert check_deployment([ACT, wf(*HOST, ext, direct)], ()) == []


def test_semver_compatible_versions_satisfy_imports() -> None:
    """An import of 1.0.0 is served by an export of 1.2.0, but not of 2.0.0."""
    imp = InterfaceInfo("t:act/basic@1.0.0", {"double": DOUBLE})
    assert check_imports([ACT, wf(imp)]) == []
    newer = comp("act2", "activity", {"t:act/basic@2.0.0.double": DOUBLE})
    text = messages(check_imports([newer, wf(imp)]))
    assert "d.yaml:9" in text and "workflow 'flow' imports t:act/basic@1.0.0, but no component in this deployment exports t:act/basic@1.0.0" in text


def test_missing_function_and_type_mismatch_are_reported() -> None:
    """A function the export lacks, and one with other types, are named with both signatures."""
    imp = InterfaceInfo("t:act/basic@1.0.0", {"triple": DOUBLE, "double": FunctionType((("x", Prim("u32")),), U64)})
    text = messages(check_imports([ACT, wf(imp)]))
    assert "imports t:act/basic@1.0.0.triple, but t:act/basic@1.2.0 (exported by 'act') has no function 'triple'" in text
    assert "imports t:act/basic@1.0.0.double as func(x: u32) -> u64, which does not match t:act/basic@1.2.0.double: func(x: u64) -> u64" in text
    assert "the parameter types differ" in text and "platform wit ext" in text


def test_extension_imports_are_type_checked() -> None:
    """An extension function whose payload type differs from the export is a problem; an unknown suffix too."""
    ext = InterfaceInfo(
        "t:act-dolmen-ext/basic@1.0.0",
        {
            "double-await-next": FunctionType((("join-set", JOIN_SET),), ResultT(TupleT((STR, STR)), ERR)),
            "double-cancel": FunctionType((), None),
            "halve-submit": FunctionType((("join-set", JOIN_SET), ("x", U64)), STR),
        },
    )
    text = messages(check_imports([ACT, wf(ext)]))
    assert "double-await-next" in text and "the result types differ" in text
    assert "double-cancel, which is not an extension function" in text
    assert "has no function 'halve'" in text


def test_host_imports_need_the_right_version() -> None:
    """dolmen:workflow must be the version this Dolmen provides; wasi imports are always provided."""
    assert check_imports([ACT, wf(*HOST)]) == []
    text = messages(check_imports([ACT, wf(InterfaceInfo("dolmen:workflow/host@2.0.0"))]))
    assert "imports dolmen:workflow/host@2.0.0, but this Dolmen provides dolmen:workflow/{types,host}@1.0.0" in text


def test_activities_may_only_import_wasi() -> None:
    """An activity importing another interface (or a world-level function) is refused."""
    act = comp("greeter", "activity", {"t:greet/greet@2.0.0.greet": FunctionType((), STR)}, (InterfaceInfo("t:greet/audit@2.0.0"),))
    text = messages(check_imports([act]))
    assert "activity 'greeter' imports t:greet/audit@2.0.0, which no host provides" in text
    world = Described("w", "workflow", {"t:w/w@1.0.0.f": FunctionType((), None)}, (), Location("d.yaml", 1), ("log",))
    assert "imports the world-level function 'log'" in messages(check_imports([world]))


def test_duplicate_exports_and_empty_components() -> None:
    """An ffqn exported by two components, or a component exporting nothing, is refused."""
    twin = comp("twin", "activity", {"t:act/basic@1.2.0.double": DOUBLE}, line=7)
    empty = comp("empty", "activity", {}, line=11)
    text = messages(check_exports([ACT, twin, empty]))
    assert "d.yaml:7" in text and "component 'twin' exports t:act/basic@1.2.0.double, which component 'act'" in text
    assert "give one a new WIT package version to run both side by side" in text
    assert "component 'empty' exports no function" in text


def test_side_by_side_versions_are_not_duplicates() -> None:
    """The same function in two WIT versions from two components is fine."""
    v2 = comp("act2", "activity", {"t:act/basic@2.0.0.double": DOUBLE})
    assert check_exports([ACT, v2]) == []


def route(path: str, function: str, params: tuple[str, ...] = ()) -> RouteEntry:
    return RouteEntry(RouteSpec("POST", path, function), params, Location("d.yaml", 20, "routes[0]"))


def test_routes_must_name_deployed_functions_and_their_params() -> None:
    """Unknown functions, unknown path parameters and non-JSON functions are refused."""
    assert check_routes([ACT], (route("/double/{x}", "t:act/basic@1.2.0.double", ("x",)),)) == []
    text = messages(check_routes([ACT], (route("/d", "t:act/basic@1.0.0.double"),)))
    assert "d.yaml:20: routes[0].function: route POST /d names t:act/basic@1.0.0.double, which no component" in text
    assert "did you mean t:act/basic@1.2.0.double" in text
    text = messages(check_routes([ACT], (route("/d/{y}", "t:act/basic@1.2.0.double", ("y",)),)))
    assert "routes[0].path: path parameter '{y}' is not a parameter of t:act/basic@1.2.0.double (its parameters: x)" in text
    handle = comp("h", "activity", {"t:h/h@1.0.0.peek": FunctionType((("c", JOIN_SET),), U64)})
    assert "cannot be invoked over HTTP" in messages(check_routes([handle], (route("/p", "t:h/h@1.0.0.peek"),)))


def test_a_stub_satisfies_a_workflows_imports_and_needs_nothing_itself() -> None:
    """A workflow may import a stub's interface; the stub's own imports are never linked, so never checked."""
    stub = comp("approvals", "stub", {"t:stub/approvals@1.0.0.approve": FunctionType((("id", STR),), ResultT(STR, STR))},
                (InterfaceInfo("t:nowhere/else@1.0.0"),))  # fmt: skip
    imp = InterfaceInfo("t:stub/approvals@1.0.0", {"approve": FunctionType((("id", STR),), ResultT(STR, STR))})
    assert check_deployment([stub, wf(*HOST, imp)], ()) == []
