"""wasmtime-py's tagging rule: when a variant-like WIT value is a bare payload and when a `Variant(tag, payload)`.

wasmtime-py represents a value of a variant, option or result by its bare
payload when the Python classes of its cases do not overlap, and as a
`Variant` when they do (its `add_classes`). `is_tagged` mirrors that rule
exactly, and `accepts` is the exact case test that
`platform/wasm/_wasmtime_fixes.py` makes wasmtime-py use when it lowers an
untagged value. The codec (`codec.py`) builds and reads values by these.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from wasmtime.component import Record, Variant

from .types import INT_RANGES, EnumT, FlagsT, ListT, OptionT, Prim, RecordT, ResultT, TupleT, VariantT, WitType


def classes(ty: WitType | None) -> frozenset[str]:
    """Python class names wasmtime-py uses for values of `ty` (its `add_classes`)."""
    if ty is None:
        return frozenset({"object"})
    if isinstance(ty, Prim):
        if ty.name == "bool":
            return frozenset({"bool"})
        if ty.name in INT_RANGES:
            return frozenset({"int"})
        if ty.name in ("f32", "f64"):
            return frozenset({"float"})
        return frozenset({"str"})
    if isinstance(ty, ListT):
        return frozenset({"bytes"}) if ty.element == Prim("u8") else frozenset({"list"})
    if isinstance(ty, RecordT):
        return frozenset({"Record"})
    if isinstance(ty, TupleT):
        return frozenset({"tuple"})
    if isinstance(ty, EnumT):
        return frozenset({"str"})
    if isinstance(ty, FlagsT):
        return frozenset({"set"})
    if isinstance(ty, (VariantT, OptionT, ResultT)):
        if is_tagged(ty):
            return frozenset({"Variant"})
        out: set[str] = set()
        for _, case_ty in cases(ty):
            out |= classes(case_ty)
        return frozenset(out)
    return frozenset({"ResourceAny", "ResourceHost"})


def cases(ty: VariantT | OptionT | ResultT) -> list[tuple[str, WitType | None]]:
    """The (name, payload type) cases of a variant-like type, as wasmtime-py orders them."""
    if isinstance(ty, VariantT):
        return list(ty.cases)
    if isinstance(ty, OptionT):
        return [("none", None), ("some", ty.inner)]
    return [("ok", ty.ok), ("err", ty.err)]


@lru_cache(maxsize=4096)
def is_tagged(ty: WitType) -> bool:
    """Whether wasmtime-py represents values of this variant-like type as `Variant`."""
    if not isinstance(ty, (VariantT, OptionT, ResultT)):
        return False
    seen: set[str] = set()
    for _, case_ty in cases(ty):
        case = classes(case_ty)
        if case & seen:
            return True
        seen |= case
    return False


def accepts(ty: WitType | None, value: Any) -> bool:
    """Whether `value` is the wasmtime-py form of a value of `ty` (None: a case without payload).

    Exact where `isinstance` is not: `bool` is not an integer, and only a case
    without payload (or an untagged option or variant containing one) takes None.
    """
    if ty is None:
        return value is None
    if isinstance(ty, Prim):
        if ty.name == "bool":
            return type(value) is bool
        if ty.name in INT_RANGES:
            return isinstance(value, int) and not isinstance(value, bool)
        if ty.name in ("f32", "f64"):
            return isinstance(value, float)
        return isinstance(value, str)
    if isinstance(ty, ListT):
        return isinstance(value, bytes if ty.element == Prim("u8") else list)
    if isinstance(ty, RecordT):
        return isinstance(value, Record)
    if isinstance(ty, TupleT):
        return isinstance(value, tuple)
    if isinstance(ty, EnumT):
        return isinstance(value, str)
    if isinstance(ty, FlagsT):
        return isinstance(value, set)
    if isinstance(ty, (VariantT, OptionT, ResultT)):
        if is_tagged(ty):
            return isinstance(value, Variant)
        return any(accepts(case_ty, value) for _, case_ty in cases(ty))
    return type(value).__name__ in classes(ty)
