"""Introspection: exported functions as ffqns with parameter names and WIT types, and imported interfaces."""

from __future__ import annotations

import json
from pathlib import Path

import wasmtime

from dolmen.platform.ffqn import Ffqn, InterfaceName
from dolmen.platform.wasm.engine import EngineSettings
from dolmen.platform.wasm.loader import ComponentLoader, LoadedComponent
from dolmen.platform.wit.types import (
    EnumT,
    FlagsT,
    FunctionType,
    ListT,
    OptionT,
    Prim,
    RecordT,
    ResourceT,
    ResultT,
    VariantT,
)
from dolmen.platform.wasm.cache import ComponentCache

STRING, U32, U8 = Prim("string"), Prim("u32"), Prim("u8")

# A hand-written component: an interface import with two structurally equal
# records, a world-level function import, an interface export and a
# world-level function export.
TINY_WAT = """
(component
  (import "log" (func (param "msg" string)))
  (type $a (record (field "x" s32) (field "y" s32)))
  (type $b (record (field "x" s32) (field "y" s32)))
  (import "test:dup/types@0.1.0" (instance
     (export "first" (type $ea (eq $a)))
     (export "second" (type $eb (eq $b)))
     (export "swap" (func (param "p" $ea) (result $eb)))
  ))
  (core module $m (func (export "f") (result i32) i32.const 7))
  (core instance $i (instantiate $m))
  (func $f (result u32) (canon lift (core func $i "f")))
  (instance $x (export "get" (func $f)))
  (export "test:tiny/answer@0.1.0" (instance $x))
  (export "answer" (func $f))
)
"""


def test_versioned_exports_with_parameter_names_and_types(greeter_v1_guest: LoadedComponent) -> None:
    """Each exported function is an ffqn carrying the interface version, its parameter names and WIT types."""
    functions = greeter_v1_guest.info.functions()
    greeting = RecordT((("text", STRING), ("shout", Prim("bool"))), "greeting")
    assert functions[Ffqn.parse("test:greeter/greet@1.0.0.greet")] == FunctionType((("name", STRING),), STRING)
    compose = functions[Ffqn.parse("test:greeter/greet@1.0.0.compose")]
    assert compose == FunctionType((("name", STRING), ("times", U8)), greeting)
    assert isinstance(compose.result, RecordT) and compose.result.name == "greeting"
    assert compose.wit() == "func(name: string, times: u8) -> greeting"
    assert set(map(str, functions)) == {
        "test:greeter/greet@1.0.0.greet",
        "test:greeter/greet@1.0.0.compose",
        "test:greeter/counters@1.0.0.make-counter",
        "test:greeter/counters@1.0.0.peek",
        "test:greeter/counters@1.0.0.count-to",
    }


def test_resource_functions_are_listed_but_not_invocable(greeter_v1_guest: LoadedComponent) -> None:
    """Functions taking or returning resource handles are reported with the reason they cannot be called."""
    info = greeter_v1_guest.info
    functions = info.functions()
    make = functions[Ffqn.parse("test:greeter/counters@1.0.0.make-counter")]
    peek = functions[Ffqn.parse("test:greeter/counters@1.0.0.peek")]
    assert make.result == ResourceT("own", "counter") and make.wit() == "func(start: u32) -> counter"
    assert peek.wit() == "func(c: borrow<counter>) -> u32"
    assert make.unsupported_reason() == "result: it uses the resource handle counter, which cannot be sent as JSON"
    assert peek.unsupported_reason() == (
        "parameter 'c': it uses the resource handle borrow<counter>, which cannot be sent as JSON"
    )
    assert set(map(str, info.invocable())) == {
        "test:greeter/greet@1.0.0.greet",
        "test:greeter/greet@1.0.0.compose",
        "test:greeter/counters@1.0.0.count-to",
    }
    counters = next(i for i in info.exports if i.name == "test:greeter/counters@1.0.0")
    assert counters.resources == ("counter",)
    # Constructors and methods belong to the resource, not to the ffqn namespace.
    assert "[constructor]counter" in counters.functions and "[method]counter.next" in counters.functions
    assert not any(f.function.startswith("[") for f in functions)


def test_world_level_exports_have_no_ffqn(greeter_v1_guest: LoadedComponent) -> None:
    """A function exported by the world itself is reported by name and signature, outside the ffqns."""
    info = greeter_v1_guest.info
    assert info.world_functions == ("version",)
    assert info.world_function_types["version"] == FunctionType((), STRING)
    assert all(f.function != "version" for f in info.functions())


def test_same_interface_at_two_versions(greeter_v1_guest: LoadedComponent, greeter_v2_guest: LoadedComponent) -> None:
    """test:greeter/greet at 1.0.0 and 2.0.0 give distinct ffqns with their own signatures."""
    v1 = greeter_v1_guest.info.functions()
    v2 = greeter_v2_guest.info.functions()
    greet1, greet2 = Ffqn.parse("test:greeter/greet@1.0.0.greet"), Ffqn.parse("test:greeter/greet@2.0.0.greet")
    assert greet1 in v1 and greet1 not in v2 and greet2 in v2
    assert v2[greet2] == FunctionType((("name", STRING), ("excited", Prim("bool"))), STRING)
    both = {**v1, **v2}
    assert both[greet1] != both[greet2]
    assert greeter_v1_guest.digest != greeter_v2_guest.digest


def test_imports_are_listed_with_their_versions(greeter_v1_guest: LoadedComponent, greeter_v2_guest: LoadedComponent) -> None:
    """Imported interfaces are listed by name and version, with their functions."""
    v1_imports = {i.name for i in greeter_v1_guest.info.imports}
    assert "wasi:cli/environment@0.2.9" in v1_imports and "wasi:io/streams@0.2.9" in v1_imports
    assert all(InterfaceName.parse(name).version == "0.2.9" for name in v1_imports)
    audit = next(i for i in greeter_v2_guest.info.imports if i.name == "test:greeter/audit@2.0.0")
    assert audit.parsed == InterfaceName("test", "greeter", "audit", "2.0.0")
    assert audit.functions == {"record-event": FunctionType((("event", STRING),), None)}
    streams = next(i for i in greeter_v1_guest.info.imports if i.name == "wasi:io/streams@0.2.9")
    assert "output-stream" in streams.resources


def test_unversioned_interfaces_and_named_types(echo_guest: LoadedComponent) -> None:
    """Unversioned interfaces give unversioned ffqns, and named types keep their WIT names."""
    info = echo_guest.info
    assert {i.name for i in info.exports if i.parsed} == {"test:echo/prims", "test:echo/compound", "test:echo/choices"}
    assert all(f.interface.version is None for f in info.functions())
    choices = next(i for i in info.exports if i.name == "test:echo/choices")
    assert isinstance(choices.types["loose"], VariantT) and choices.types["loose"].name == "loose"
    assert choices.types["color"] == EnumT(("red", "green", "light-blue"), "color")
    assert choices.types["permissions"] == FlagsT(("read", "write", "run-as-admin"), "permissions")
    assert "point" in choices.types  # used from `compound`, and exported by `choices` too
    person = info.functions()[Ffqn.parse("test:echo/compound.echo-person")].params[0][1]
    assert isinstance(person, RecordT)
    assert person.fields == (
        ("first-name", STRING),
        ("last-name", OptionT(STRING)),
        ("age", U8),
        ("nick-names", ListT(STRING)),
        ("home", OptionT(RecordT((("x", Prim("s32")), ("y", Prim("s32"))), "point"))),
    )
    results = info.functions()[Ffqn.parse("test:echo/choices.echo-result-err-only")]
    assert results.result == ResultT(None, STRING)


def test_descriptions_are_json_and_read_back(echo_guest: LoadedComponent, greeter_v1_guest: LoadedComponent) -> None:
    """The JSON description of a component is plain JSON, and its function types read back equal."""
    for loaded in (echo_guest, greeter_v1_guest):
        data = json.loads(json.dumps(loaded.info.to_json()))
        for iface in data["exports"]:
            for fname, fdata in iface["functions"].items():
                original = next(i for i in loaded.info.exports if i.name == iface["name"]).functions[fname]
                assert FunctionType.from_json(fdata) == original
    data = greeter_v1_guest.info.to_json()
    assert data["world_functions"] == [{"name": "version", "signature": "func() -> string"}]
    assert all(i["name"] != "exports" for i in data["exports"])


def test_structural_twins_keep_their_own_names(tmp_path: Path) -> None:
    """Two identical record definitions are each listed under their own name; world-level imports are listed."""
    loader = ComponentLoader(ComponentCache(tmp_path), EngineSettings.for_kind("activity"))
    info = loader.load_bytes(bytes(wasmtime.wat2wasm(TINY_WAT))).info
    dup = next(i for i in info.imports if i.name == "test:dup/types@0.1.0")
    assert dup.types["first"].wit() == "first"
    assert dup.types["second"].wit() == "second"
    assert dup.types["first"] == dup.types["second"]
    assert info.world_imports == ("log",)
    assert info.world_functions == ("answer",)
    assert info.functions() == {Ffqn.parse("test:tiny/answer@0.1.0.get"): FunctionType((), U32)}
