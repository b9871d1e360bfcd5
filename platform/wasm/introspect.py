"""Read a component's exported functions and imported interfaces from its types.

wasmtime's value types carry no names, but each interface instance type also
exports the types it defines or uses. A named type is found by structural
equality against those exports, which is how WIT names come back for display
and for generating extension WIT.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from wasmtime import Engine
from wasmtime.component import (
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    BorrowType,
    Bool,
    Char,
    Component,
    ComponentInstanceType,
    EnumType,
    ErrorContext,
    FlagsType,
    FuncType,
    FutureType,
    ListType,
    OptionType,
    OwnType,
    RecordType,
    ResourceType,
    ResultType,
    StreamType,
    String,
    TupleType,
    ValType,
    VariantType,
)

from ..ffqn import Ffqn, InterfaceName
from ..wit.types import (
    type_from_json,
    EnumT,
    FlagsT,
    FunctionType,
    ListT,
    OpaqueT,
    OptionT,
    Prim,
    PrimName,
    RecordT,
    ResourceT,
    ResultT,
    TupleT,
    VariantT,
    WitType,
)

_PRIMS: dict[type, PrimName] = {
    Bool: "bool", S8: "s8", S16: "s16", S32: "s32", S64: "s64", U8: "u8", U16: "u16",
    U32: "u32", U64: "u64", F32: "f32", F64: "f64", Char: "char", String: "string",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """An imported or exported interface: its functions, named types and resources."""

    name: str
    functions: dict[str, FunctionType] = field(default_factory=dict)
    types: dict[str, WitType] = field(default_factory=dict)
    resources: tuple[str, ...] = ()

    @property
    def parsed(self) -> InterfaceName | None:
        """Its name parsed (`ns:pkg/iface@v`); None for a name that is not a WIT interface's (a world's own)."""
        return InterfaceName.try_parse(self.name)

    def to_cache(self) -> dict[str, Any]:
        """`{"name", "functions", "types", "resources"}`, each type as `WitType.to_json`."""
        return {
            "name": self.name,
            "functions": {n: f.to_json() for n, f in self.functions.items()},
            "types": {n: t.to_json() for n, t in self.types.items()},
            "resources": list(self.resources),
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> InterfaceInfo:
        """The inverse of `to_cache`; KeyError or ValueError for another version's format."""
        return cls(
            data["name"],
            {n: FunctionType.from_json(f) for n, f in data["functions"].items()},
            {n: type_from_json(t) for n, t in data["types"].items()},
            tuple(data["resources"]),
        )


@dataclass(frozen=True, slots=True)
class ComponentInfo:
    """What a component exports and imports, in Dolmen's own types.

    `world_functions` are functions exported directly by the world (not in an
    interface): they have no ffqn, so Dolmen cannot invoke them; their types
    are in `world_function_types`. `world_imports` are functions the world
    imports directly.
    """

    exports: tuple[InterfaceInfo, ...]
    imports: tuple[InterfaceInfo, ...]
    world_functions: tuple[str, ...] = ()
    world_function_types: dict[str, FunctionType] = field(default_factory=dict)
    world_imports: tuple[str, ...] = ()

    def to_cache(self) -> dict[str, Any]:
        """Everything, for the info cache next to the compiled artifact (reading types costs ~25 ms)."""
        return {
            "exports": [i.to_cache() for i in self.exports],
            "imports": [i.to_cache() for i in self.imports],
            "world_functions": list(self.world_functions),
            "world_function_types": {n: f.to_json() for n, f in self.world_function_types.items()},
            "world_imports": list(self.world_imports),
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> ComponentInfo:
        """The inverse of `to_cache`; KeyError or ValueError for another version's format."""
        return cls(
            tuple(InterfaceInfo.from_cache(i) for i in data["exports"]),
            tuple(InterfaceInfo.from_cache(i) for i in data["imports"]),
            tuple(data["world_functions"]),
            {n: FunctionType.from_json(f) for n, f in data["world_function_types"].items()},
            tuple(data["world_imports"]),
        )

    def functions(self) -> dict[Ffqn, FunctionType]:
        """Every function exported by a WIT interface (versioned or not), by ffqn.

        Resource constructors and methods are left out: they are called on a
        resource, not by name. Functions whose parameters or result cannot be
        written as JSON are included; see `FunctionType.unsupported_reason`.
        """
        out: dict[Ffqn, FunctionType] = {}
        for iface in self.exports:
            parsed = iface.parsed
            if parsed is None:
                continue
            for fname, fty in iface.functions.items():
                if fname.startswith("["):  # resource methods and constructors
                    continue
                out[Ffqn(parsed, fname)] = fty
        return out

    def invocable(self) -> dict[Ffqn, FunctionType]:
        """The exported functions that can be called with JSON params."""
        return {f: t for f, t in self.functions().items() if t.unsupported_reason() is None}

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description (the `--json` output of `platform wit`)."""

        def iface(i: InterfaceInfo) -> dict[str, Any]:
            return {
                "name": i.name,
                "functions": {n: f.to_json() for n, f in i.functions.items()},
                "types": {n: t.to_json() for n, t in i.types.items()},
                "resources": list(i.resources),
            }

        return {
            "exports": [iface(i) for i in self.exports if i.parsed is not None],
            "imports": [iface(i) for i in self.imports],
            "world_functions": [
                {"name": n, "signature": self.world_function_types[n].wit()} if n in self.world_function_types else {"name": n}
                for n in self.world_functions
            ],
            "world_imports": list(self.world_imports),
        }


def inspect_component(engine: Engine, component: Component) -> ComponentInfo:
    """Describe `component`'s exports and imports (from its type: nothing is instantiated).

    May raise `WasmtimeError` or `TypeError` for a type it cannot read: the loader turns them into `ComponentError`.
    """
    ctype = component.type
    exports: list[InterfaceInfo] = []
    world_functions: dict[str, FunctionType] = {}
    for name, ext in ctype.exports(engine).items():
        ty = ext.ty
        if isinstance(ty, ComponentInstanceType):
            exports.append(_interface(engine, name, ty))
        elif isinstance(ty, FuncType):
            world_functions[name] = _function(_Converter([], []), ty)
    imports: list[InterfaceInfo] = []
    world_imports: list[str] = []
    for name, ext in ctype.imports(engine).items():
        if isinstance(ext.ty, ComponentInstanceType):
            imports.append(_interface(engine, name, ext.ty))
        elif isinstance(ext.ty, FuncType):
            world_imports.append(name)
    return ComponentInfo(
        tuple(exports), tuple(imports), tuple(world_functions), world_functions, tuple(world_imports)
    )


def _interface(engine: Engine, name: str, ty: ComponentInstanceType) -> InterfaceInfo:
    items = {n: e.ty for n, e in ty.exports(engine).items()}
    named: list[tuple[str, ValType]] = []
    resources: list[str] = []
    for item_name, item in items.items():
        if isinstance(item, ResourceType):
            resources.append(item_name)
        elif isinstance(item, (RecordType, VariantType, EnumType, FlagsType)):
            named.append((item_name, item))
    conv = _Converter(named, [(n, t) for n, t in items.items() if isinstance(t, ResourceType)])
    # wasmtime compares types structurally, so two identical definitions
    # would both take the first one's name: name each by its own export.
    types = {n: _renamed(conv.convert(t), n) for n, t in named}
    functions = {
        item_name: _function(conv, item) for item_name, item in items.items() if isinstance(item, FuncType)
    }
    return InterfaceInfo(name, functions, types, tuple(resources))


def _renamed(ty: WitType, name: str) -> WitType:
    if isinstance(ty, (RecordT, VariantT, EnumT, FlagsT)):
        return replace(ty, name=name)
    return ty


def _function(conv: _Converter, ty: FuncType) -> FunctionType:
    return FunctionType(
        tuple((pname, conv.convert(pty)) for pname, pty in ty.params),
        None if ty.result is None else conv.convert(ty.result),
    )


class _Converter:
    """wasmtime value types -> `WitType`, naming types found in the interface."""

    def __init__(self, named: list[tuple[str, ValType]], resources: list[tuple[str, ResourceType]]) -> None:
        self._named = named
        self._resources = resources

    def _name_of(self, ty: ValType) -> str | None:
        for name, candidate in self._named:
            if type(candidate) is type(ty) and candidate == ty:
                return name
        return None

    def _resource_name(self, ty: ResourceType) -> str | None:
        for name, candidate in self._resources:
            if candidate == ty:
                return name
        return None

    def convert(self, ty: ValType) -> WitType:
        prim = _PRIMS.get(type(ty))
        if prim is not None:
            return Prim(prim)
        if isinstance(ty, ListType):
            return ListT(self.convert(ty.element))
        if isinstance(ty, OptionType):
            return OptionT(self.convert(ty.payload))
        if isinstance(ty, ResultType):
            ok, err = ty.ok, ty.err
            return ResultT(None if ok is None else self.convert(ok), None if err is None else self.convert(err))
        if isinstance(ty, TupleType):
            return TupleT(tuple(self.convert(e) for e in ty.elements))
        if isinstance(ty, RecordType):
            return RecordT(tuple((n, self.convert(t)) for n, t in ty.fields), self._name_of(ty))
        if isinstance(ty, VariantType):
            return VariantT(
                tuple((n, None if t is None else self.convert(t)) for n, t in ty.cases),
                self._name_of(ty),
            )
        if isinstance(ty, EnumType):
            return EnumT(tuple(ty.names), self._name_of(ty))
        if isinstance(ty, FlagsType):
            return FlagsT(tuple(ty.names), self._name_of(ty))
        if isinstance(ty, OwnType):
            return ResourceT("own", self._resource_name(ty.ty))
        if isinstance(ty, BorrowType):
            return ResourceT("borrow", self._resource_name(ty.ty))
        if isinstance(ty, FutureType):
            return OpaqueT("future")
        if isinstance(ty, StreamType):
            return OpaqueT("stream")
        if isinstance(ty, ErrorContext):
            return OpaqueT("error-context")
        raise TypeError(f"unknown wasmtime value type {ty!r}")
