"""Dolmen's own model of WIT types, independent of wasmtime.

Types are frozen dataclasses so they can be compared, hashed, serialized into
the store (the gateway converts values without loading any wasm) and rendered
back as WIT text. Names of records, variants, enums and flags are kept for
display but do not take part in equality: the component model types values
structurally. The types and their WIT syntax are the component model's
(https://github.com/WebAssembly/component-model/blob/main/design/mvp/WIT.md,
"Types"); the JSON description of each class is Dolmen's own (`to_json`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

PrimName = Literal[
    "bool", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f32", "f64", "char", "string"
]
PRIMITIVES: tuple[PrimName, ...] = (
    "bool", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f32", "f64", "char", "string",
)  # fmt: skip
INT_RANGES: dict[str, tuple[int, int]] = {
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "s8": (-(2**7), 2**7 - 1),
    "s16": (-(2**15), 2**15 - 1),
    "s32": (-(2**31), 2**31 - 1),
    "s64": (-(2**63), 2**63 - 1),
}


class WitType(ABC):
    """Base of every WIT type."""

    __slots__ = ()

    @abstractmethod
    def wit(self) -> str:
        """This type as written in WIT (named types by their name)."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """A JSON-able description, read back by `type_from_json`."""


@dataclass(frozen=True, slots=True)
class Prim(WitType):
    """A primitive: `bool`, the integers `s8` to `u64`, `f32`, `f64`, `char`, `string`. JSON `{"kind": NAME}`."""

    name: PrimName

    def wit(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.name}


@dataclass(frozen=True, slots=True)
class ListT(WitType):
    """`list<T>`. JSON `{"kind": "list", "element": T}`."""

    element: WitType

    def wit(self) -> str:
        return f"list<{self.element.wit()}>"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "list", "element": self.element.to_json()}


@dataclass(frozen=True, slots=True)
class TupleT(WitType):
    """`tuple<T, ...>`. JSON `{"kind": "tuple", "elements": [T, ...]}`."""

    elements: tuple[WitType, ...]

    def wit(self) -> str:
        return f"tuple<{', '.join(e.wit() for e in self.elements)}>"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "tuple", "elements": [e.to_json() for e in self.elements]}


@dataclass(frozen=True, slots=True)
class OptionT(WitType):
    """`option<T>`. JSON `{"kind": "option", "inner": T}`."""

    inner: WitType

    def wit(self) -> str:
        return f"option<{self.inner.wit()}>"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "option", "inner": self.inner.to_json()}


@dataclass(frozen=True, slots=True)
class ResultT(WitType):
    """`result<O, E>`, either side possibly absent (None). JSON `{"kind": "result", "ok": O | null, "err": E | null}`."""

    ok: WitType | None
    err: WitType | None

    def wit(self) -> str:
        if self.ok is None and self.err is None:
            return "result"
        if self.err is None:
            return f"result<{self.ok.wit() if self.ok else '_'}>"
        return f"result<{self.ok.wit() if self.ok else '_'}, {self.err.wit()}>"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "result",
            "ok": None if self.ok is None else self.ok.to_json(),
            "err": None if self.err is None else self.err.to_json(),
        }


@dataclass(frozen=True, slots=True)
class RecordT(WitType):
    """A record: `(field name, type)` pairs in order. JSON `{"kind": "record", "name", "fields": [[NAME, T], ...]}`."""

    fields: tuple[tuple[str, WitType], ...]
    name: str | None = field(default=None, compare=False)

    def wit(self) -> str:
        if self.name:
            return self.name
        return "record { " + ", ".join(f"{n}: {t.wit()}" for n, t in self.fields) + " }"

    def definition(self) -> str:
        """`record NAME { field: T, ... }` over several lines, as an interface defines it."""
        body = "".join(f"  {n}: {t.wit()},\n" for n, t in self.fields)
        return f"record {self.name} {{\n{body}}}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "record",
            "name": self.name,
            "fields": [[n, t.to_json()] for n, t in self.fields],
        }


@dataclass(frozen=True, slots=True)
class VariantT(WitType):
    """A variant: `(case name, payload type or None)` pairs in order.

    JSON `{"kind": "variant", "name", "cases": [[NAME, T | null], ...]}`.
    """

    cases: tuple[tuple[str, WitType | None], ...]
    name: str | None = field(default=None, compare=False)

    def wit(self) -> str:
        if self.name:
            return self.name
        return "variant { " + ", ".join(_case(n, t) for n, t in self.cases) + " }"

    def definition(self) -> str:
        """`variant NAME { case(T), ... }` over several lines, as an interface defines it."""
        body = "".join(f"  {_case(n, t)},\n" for n, t in self.cases)
        return f"variant {self.name} {{\n{body}}}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "variant",
            "name": self.name,
            "cases": [[n, None if t is None else t.to_json()] for n, t in self.cases],
        }


@dataclass(frozen=True, slots=True)
class EnumT(WitType):
    """An enum: its case names in order. JSON `{"kind": "enum", "name", "cases": [NAME, ...]}`."""

    cases: tuple[str, ...]
    name: str | None = field(default=None, compare=False)

    def wit(self) -> str:
        return self.name or "enum { " + ", ".join(self.cases) + " }"

    def definition(self) -> str:
        """`enum NAME { case, ... }` over several lines, as an interface defines it."""
        return f"enum {self.name} {{\n" + "".join(f"  {c},\n" for c in self.cases) + "}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "enum", "name": self.name, "cases": list(self.cases)}


@dataclass(frozen=True, slots=True)
class FlagsT(WitType):
    """Flags: their names in order. JSON `{"kind": "flags", "name", "flags": [NAME, ...]}`."""

    flags: tuple[str, ...]
    name: str | None = field(default=None, compare=False)

    def wit(self) -> str:
        return self.name or "flags { " + ", ".join(self.flags) + " }"

    def definition(self) -> str:
        """`flags NAME { flag, ... }` over several lines, as an interface defines it."""
        return f"flags {self.name} {{\n" + "".join(f"  {f},\n" for f in self.flags) + "}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "flags", "name": self.name, "flags": list(self.flags)}


@dataclass(frozen=True, slots=True)
class ResourceT(WitType):
    """A handle (`own<r>` / `borrow<r>`); its values have no JSON form. JSON `{"kind": "own" | "borrow", "name"}`."""

    handle: Literal["own", "borrow"]
    name: str | None = field(default=None, compare=False)

    def wit(self) -> str:
        name = self.name or "resource"
        return name if self.handle == "own" else f"borrow<{name}>"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.handle, "name": self.name}


@dataclass(frozen=True, slots=True)
class OpaqueT(WitType):
    """`future`, `stream` or `error-context`: async types whose values have no JSON form. JSON `{"kind": KIND}`."""

    kind: Literal["future", "stream", "error-context"]

    def wit(self) -> str:
        return self.kind

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind}


def _case(name: str, ty: WitType | None) -> str:
    return name if ty is None else f"{name}({ty.wit()})"


def named_types(ty: WitType | None) -> list[WitType]:
    """Every named type reachable from `ty`, innermost first, without duplicates."""
    out: list[WitType] = []

    def visit(t: WitType | None) -> None:
        if t is None:
            return
        if isinstance(t, ListT):
            visit(t.element)
        elif isinstance(t, OptionT):
            visit(t.inner)
        elif isinstance(t, TupleT):
            for e in t.elements:
                visit(e)
        elif isinstance(t, ResultT):
            visit(t.ok)
            visit(t.err)
        elif isinstance(t, RecordT):
            for _, ft in t.fields:
                visit(ft)
        elif isinstance(t, VariantT):
            for _, ct in t.cases:
                visit(ct)
        if isinstance(t, (RecordT, VariantT, EnumT, FlagsT)) and t.name:
            if not any(o is t or (o == t and getattr(o, "name", None) == t.name) for o in out):
                out.append(t)

    visit(ty)
    return out


def json_convertible(ty: WitType | None) -> str | None:
    """None when values of `ty` have a JSON form, else why not."""
    if ty is None:
        return None
    if isinstance(ty, ResourceT):
        return f"it uses the resource handle {ty.wit()}, which cannot be sent as JSON"
    if isinstance(ty, OpaqueT):
        return f"it uses the async type {ty.kind}, which cannot be sent as JSON"
    children: list[WitType | None] = []
    if isinstance(ty, ListT):
        children = [ty.element]
    elif isinstance(ty, OptionT):
        children = [ty.inner]
    elif isinstance(ty, TupleT):
        children = list(ty.elements)
    elif isinstance(ty, ResultT):
        children = [ty.ok, ty.err]
    elif isinstance(ty, RecordT):
        children = [t for _, t in ty.fields]
    elif isinstance(ty, VariantT):
        children = [t for _, t in ty.cases]
    for child in children:
        reason = json_convertible(child)
        if reason:
            return reason
    return None


def type_from_json(data: dict[str, Any]) -> WitType:
    """Read back what `WitType.to_json` wrote; ValueError for an unknown `kind`, KeyError for a missing member."""
    kind = data["kind"]
    if kind in PRIMITIVES:
        return Prim(kind)
    if kind == "list":
        return ListT(type_from_json(data["element"]))
    if kind == "tuple":
        return TupleT(tuple(type_from_json(e) for e in data["elements"]))
    if kind == "option":
        return OptionT(type_from_json(data["inner"]))
    if kind == "result":
        return ResultT(_opt(data["ok"]), _opt(data["err"]))
    if kind == "record":
        return RecordT(tuple((n, type_from_json(t)) for n, t in data["fields"]), data.get("name"))
    if kind == "variant":
        return VariantT(tuple((n, _opt(t)) for n, t in data["cases"]), data.get("name"))
    if kind == "enum":
        return EnumT(tuple(data["cases"]), data.get("name"))
    if kind == "flags":
        return FlagsT(tuple(data["flags"]), data.get("name"))
    if kind in ("own", "borrow"):
        return ResourceT(kind, data.get("name"))
    if kind in ("future", "stream", "error-context"):
        return OpaqueT(kind)
    raise ValueError(f"unknown WIT type kind {kind!r}")


def _opt(data: dict[str, Any] | None) -> WitType | None:
    return None if data is None else type_from_json(data)


@dataclass(frozen=True, slots=True)
class FunctionType:
    """Parameters (`(name, type)` pairs in order) and the optional result of a function."""

    params: tuple[tuple[str, WitType], ...]
    result: WitType | None

    def wit(self) -> str:
        """`func(name: T, ...) -> R`, as WIT writes a function type."""
        params = ", ".join(f"{n}: {t.wit()}" for n, t in self.params)
        return f"func({params})" + (f" -> {self.result.wit()}" if self.result else "")

    def to_json(self) -> dict[str, Any]:
        """`{"params": [{"name", "type", "wit"}, ...], "result": T | null, "result_wit": str | null}`: each type
        as `WitType.to_json` and as WIT text."""
        return {
            "params": [{"name": n, "type": t.to_json(), "wit": t.wit()} for n, t in self.params],
            "result": None if self.result is None else self.result.to_json(),
            "result_wit": None if self.result is None else self.result.wit(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunctionType:
        """The inverse of `to_json` (the WIT texts are not read); raises as `type_from_json`."""
        return cls(
            tuple((p["name"], type_from_json(p["type"])) for p in data["params"]),
            _opt(data["result"]),
        )

    def unsupported_reason(self) -> str | None:
        """None when the function can be invoked with JSON, else why not."""
        for name, ty in self.params:
            reason = json_convertible(ty)
            if reason:
                return f"parameter '{name}': {reason}"
        reason = json_convertible(self.result)
        return f"result: {reason}" if reason else None
