"""A documented patch of wasmtime-py's lowering of untagged variant-like values.

wasmtime-py 50 passes a `variant`, `option` or `result` whose cases have
disjoint Python classes as the bare payload (no `Variant(tag, payload)`), and
`VariantLikeType._lower` then picks the case with `isinstance(value, classes)`,
trying the cases in declaration order. Two Python facts break that test:

* `bool` is a subclass of `int`: for `result<u32, bool>` the value `True` meant
  as `err(true)` passes the `ok` case's `int` test first and reaches the guest
  as `ok(1)`;
* a case without payload contributes the class `object`, which every value is
  an instance of: for `variant { maybe(option<u32>), text(string) }` the string
  meant as `text` is tried as `maybe` and the call fails with
  `ValueError('value not valid for this variant')`.

The patched `_lower` chooses the case with an exact test that mirrors the
classes `add_classes` names (`bool` only for `bool`, `int` but not `bool` for
integers, `None` only for cases without payload or untagged options), which
is the rule `dolmen.platform.wit.codec` follows when it builds those values. It
also drops the shared module-level `case_test_cache`, which made concurrent
lowering from several threads racy. Tagged values are lowered as before.

`apply()` is idempotent; the modules that call guests (`loader`, `guest`,
`activity_host`) call it when they are imported.
"""

from __future__ import annotations

import ctypes
from ctypes import byref
from typing import Any

from wasmtime import _ffi as ffi
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
    EnumType,
    FlagsType,
    ListType,
    OwnType,
    Record,
    RecordType,
    ResourceAny,
    ResourceHost,
    String,
    TupleType,
    ValType,
    Variant,
)
from wasmtime.component._types import VariantLikeType

_INTS = (S8, S16, S32, S64, U8, U16, U32, U64)
_ORIGINAL_LOWER = VariantLikeType._lower  # pyright: ignore[reportPrivateUsage]


def accepts(ty: ValType | None, value: Any) -> bool:
    """Whether `value` is the Python form wasmtime-py uses for type `ty` (None: no payload)."""
    if ty is None:
        return value is None
    if isinstance(ty, Bool):
        return type(value) is bool
    if isinstance(ty, _INTS):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(ty, (F32, F64)):
        return isinstance(value, float)
    if isinstance(ty, (Char, String, EnumType)):
        return isinstance(value, str)
    if isinstance(ty, ListType):
        return isinstance(value, bytes if isinstance(ty.element, U8) else list)
    if isinstance(ty, RecordType):
        return isinstance(value, Record)
    if isinstance(ty, TupleType):
        return isinstance(value, tuple)
    if isinstance(ty, FlagsType):
        return isinstance(value, set)
    if isinstance(ty, VariantLikeType):
        if ty._tagged():  # pyright: ignore[reportPrivateUsage]
            return isinstance(value, Variant)
        return any(accepts(case, value) for _, case in ty._cases())  # pyright: ignore[reportPrivateUsage]
    if isinstance(ty, (OwnType, BorrowType)):
        return isinstance(value, (ResourceAny, ResourceHost))
    classes: set[type] = set()
    ty.add_classes(classes)
    return isinstance(value, tuple(classes))


def _lower(self: VariantLikeType, store: Any, val: Any) -> tuple[str, Any]:
    """`VariantLikeType._lower` with an exact case test for untagged values."""
    tagged = self._tagged()  # pyright: ignore[reportPrivateUsage]
    if tagged and not isinstance(val, Variant):
        raise TypeError("expected Variant type")
    for name, ty in self._cases():  # pyright: ignore[reportPrivateUsage]
        if tagged:
            if name != val.tag:
                continue
        elif not accepts(ty, val):
            continue
        if ty is None:
            return (name, None)
        raw = ffi.wasmtime_component_val_t()
        ty.convert_to_c(store, val.payload if tagged else val, ctypes.pointer(raw))
        return (name, ffi.wasmtime_component_val_new(byref(raw)))
    raise ValueError("value not valid for this variant")


def apply() -> None:
    """Install the patched `_lower` (idempotent)."""
    VariantLikeType._lower = _lower  # type: ignore[method-assign]


def applied() -> bool:
    """Whether the patch is installed."""
    return VariantLikeType._lower is _lower  # pyright: ignore[reportPrivateUsage]


def original_lower() -> Any:
    """wasmtime-py's own `_lower`, for tests that show the bug it has."""
    return _ORIGINAL_LOWER
