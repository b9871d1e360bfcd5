"""Documented patches of wasmtime-py 50's component value conversions.

1. Lowering of untagged variant-like values (below).
2. Exceptions raised by host functions travel back to the guest call through
   a module-level global in `wasmtime.component._enter`; with several threads
   calling guests, one thread's exception is raised by another's call (seen:
   a workflow's request to unload surfaced as a trap of another workflow).
   The patch keeps that hand-over per thread.
3. `list<u8>` values are converted one element (one FFI structure) at a time:
   2,500 random bytes asked by CPython at start-up cost 8 ms. The patch fills
   the element array with two strided copies instead.
4. Every call of a host function read its parameter and result types again
   through the C API (a quarter of a workflow's replay time). The patched
   callback reads them once per host function.
5. Composite types read their member types through the C API at every
   conversion (`cases`, `ok`/`err`, `payload`, `elements`, `fields`,
   `element`, each a new Python object), and variant-like types worked out
   again whether they are tagged: lowering a workflow's `-await-next`
   answer took several dozen such C calls. A type never changes, so each
   one keeps the answers on itself; with (4) a host function's types then
   live as long as the linker. Concurrent callers may both compute an
   answer; the first one stored (`dict.setdefault`, atomic) is the one
   every thread uses.

The variant lowering in detail:

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
import threading
from collections.abc import Callable
from ctypes import byref
from typing import Any

from ._wasmtime_version import check_wasmtime_version, installed_wasmtime

# The wasmtime-py release whose internals these patches replace: checked before they are imported.
WRITTEN_FOR_WASMTIME = "50.0.1"
check_wasmtime_version(installed_wasmtime(), WRITTEN_FOR_WASMTIME, "platform/wasm/_wasmtime_fixes.py")

from wasmtime import StoreContext, WasmtimeError

from . import _gil
from wasmtime import _ffi as ffi
from wasmtime.component import _enter, _linker  # pyright: ignore[reportPrivateUsage]
from wasmtime.component import (
    FuncType,
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
    OptionType,
    OwnType,
    Record,
    RecordType,
    ResourceAny,
    ResourceHost,
    ResultType,
    String,
    TupleType,
    ValType,
    Variant,
    VariantType,
)
from wasmtime.component._types import VariantLikeType

_INTS = (S8, S16, S32, S64, U8, U16, U32, U64)
_ORIGINAL_LOWER = VariantLikeType._lower  # pyright: ignore[reportPrivateUsage]
_ORIGINAL_TAGGED = VariantLikeType._tagged  # pyright: ignore[reportPrivateUsage]


def accepts(ty: ValType | None, value: Any) -> bool:
    """Whether `value` is the Python form wasmtime-py uses for type `ty` (None: no payload)."""
    return _case_test(ty)(value)


def _case_test(ty: ValType | None) -> Callable[[Any], bool]:
    """The exact test of `accepts` for one type, with the type's structure read once."""
    if ty is None:
        return _is_none
    if isinstance(ty, Bool):
        return _is_bool
    if isinstance(ty, _INTS):
        return _is_int
    if isinstance(ty, (F32, F64)):
        return _instance_of(float)
    if isinstance(ty, (Char, String, EnumType)):
        return _instance_of(str)
    if isinstance(ty, ListType):
        return _instance_of(bytes if isinstance(ty.element, U8) else list)
    if isinstance(ty, RecordType):
        return _instance_of(Record)
    if isinstance(ty, TupleType):
        return _instance_of(tuple)
    if isinstance(ty, FlagsType):
        return _instance_of(set)
    if isinstance(ty, VariantLikeType):
        if ty._tagged():  # pyright: ignore[reportPrivateUsage]
            return _instance_of(Variant)
        tests = tuple(_case_test(case) for _, case in ty._cases())  # pyright: ignore[reportPrivateUsage]
        return lambda value: any(test(value) for test in tests)
    if isinstance(ty, (OwnType, BorrowType)):
        return _instance_of((ResourceAny, ResourceHost))
    classes: set[type] = set()
    ty.add_classes(classes)
    return _instance_of(tuple(classes))


def _is_none(value: Any) -> bool:
    return value is None


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _instance_of(classes: type | tuple[type, ...]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, classes)


# How `_lower` goes about a type: whether it is tagged, and its cases with, when
# it is not, the test that picks each one.
_LowerPlan = tuple[bool, tuple[tuple[str, "ValType | None", "Callable[[Any], bool] | None"], ...]]


def _lower_plan(ty: VariantLikeType) -> _LowerPlan:
    tagged = ty._tagged()  # pyright: ignore[reportPrivateUsage]
    cases = ty._cases()  # pyright: ignore[reportPrivateUsage]
    return tagged, tuple((name, case, None if tagged else _case_test(case)) for name, case in cases)


def _lower(self: VariantLikeType, store: Any, val: Any) -> tuple[str, Any]:
    """`VariantLikeType._lower` with an exact case test for untagged values."""
    tagged, cases = _remembered(self, "_dolmen_lower", _lower_plan)
    if tagged and not isinstance(val, Variant):
        raise TypeError("expected Variant type")
    for name, ty, test in cases:
        if test is None:
            if name != val.tag:
                continue
        elif not test(val):
            continue
        if ty is None:
            return (name, None)
        raw = ffi.wasmtime_component_val_t()
        ty.convert_to_c(store, val.payload if tagged else val, ctypes.pointer(raw))
        return (name, ffi.wasmtime_component_val_new(byref(raw)))
    raise ValueError("value not valid for this variant")


# ------------------------------------------------- type structure, read once

_MISSING = object()


def _remembered(ty: Any, key: str, compute: Callable[[Any], Any]) -> Any:
    """`compute(ty)`, kept on `ty` under `key`; concurrent first calls all get the value stored first."""
    value = ty.__dict__.get(key, _MISSING)
    if value is _MISSING:
        value = ty.__dict__.setdefault(key, compute(ty))
    return value


def _remembering_property(cls: type, name: str, copy: bool) -> property:
    """`cls.name` (a property reading the C API) read once per type object; lists handed out as copies."""
    original = cls.__dict__[name]
    if getattr(original.fget, "_dolmen_original", None) is not None:  # already patched
        return original
    fget = original.fget
    key = f"_dolmen_{name}"

    def get(self: Any) -> Any:
        value = _remembered(self, key, fget)
        return list(value) if copy else value

    get._dolmen_original = fget  # type: ignore[attr-defined]
    return property(get, doc=original.__doc__)


def _remembering_cases(cls: type) -> Callable[[Any], Any]:
    """`cls._cases()` read once per type object, as a tuple (wasmtime-py's own callers only iterate)."""
    original = cls.__dict__["_cases"]
    original = getattr(original, "_dolmen_original", original)

    def cases(self: Any) -> Any:
        return _remembered(self, "_dolmen_cases", lambda ty: tuple(original(ty)))

    cases._dolmen_original = original  # type: ignore[attr-defined]
    return cases


def _tagged(self: VariantLikeType) -> bool:
    return _remembered(self, "_dolmen_tagged", _ORIGINAL_TAGGED)


# (class, property, whether it returns a list the caller might change)
_MEMBER_PROPERTIES = (
    (VariantType, "cases", True),
    (OptionType, "payload", False),
    (ResultType, "ok", False),
    (ResultType, "err", False),
    (TupleType, "elements", True),
    (RecordType, "fields", True),
    (ListType, "element", False),
)


# ------------------------------------------------ per-thread host exceptions

_last = threading.local()


def _catch_exceptions(store_raw: Any, func: Any) -> Any:
    store = StoreContext(store_raw)
    exception = None
    try:
        func(store)
    except WasmtimeError as exc:
        exception = exc
    except Exception as exc:  # noqa: BLE001 - handed to the guest call as a trap, re-raised there
        _last.exception = exc
        exception = WasmtimeError("python exception")
    finally:
        store._invalidate()  # pyright: ignore[reportPrivateUsage]
    if exception:
        return ctypes.cast(exception._consume(), ctypes.c_void_p).value  # pyright: ignore[reportPrivateUsage]
    return 0


def _maybe_raise_last_exn() -> None:
    exc = getattr(_last, "exception", None)
    if exc is None:
        return
    _last.exception = None
    raise exc


# ----------------------------------------------------------- fast list<u8>

_VAL_SIZE = ctypes.sizeof(ffi.wasmtime_component_val_t)
_KIND_OFFSET = ffi.wasmtime_component_val_t.kind.offset
_OF_OFFSET = ffi.wasmtime_component_val_t.of.offset
_KIND_U8 = ffi.WASMTIME_COMPONENT_U8.value if hasattr(ffi.WASMTIME_COMPONENT_U8, "value") else int(ffi.WASMTIME_COMPONENT_U8)
_ORIGINAL_LIST_TO_C = ListType.convert_to_c
_ORIGINAL_LIST_FROM_C = ListType.convert_from_c


def _is_bytes(ty: ListType) -> bool:
    # `element` asks the C API every time; remember the answer on the type object.
    cached = ty.__dict__.get("_dolmen_bytes")
    if cached is None:
        cached = ty.__dict__["_dolmen_bytes"] = isinstance(ty.element, U8)
    return cached


def _list_to_c(self: ListType, store: Any, val: Any, ptr: Any) -> None:
    if not isinstance(val, (bytes, bytearray)) or not _is_bytes(self):
        return _ORIGINAL_LIST_TO_C(self, store, val, ptr)
    n = len(val)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, n)
    if n:
        buffer = bytearray(_VAL_SIZE * n)
        buffer[_KIND_OFFSET::_VAL_SIZE] = bytes([_KIND_U8]) * n
        buffer[_OF_OFFSET::_VAL_SIZE] = val
        ctypes.memmove(raw.data, bytes(buffer), len(buffer))
    ptr.contents.kind = ffi.WASMTIME_COMPONENT_LIST
    ptr.contents.of.list = raw
    return None


def _list_from_c(self: ListType, c: Any) -> Any:
    if not _is_bytes(self):
        return _ORIGINAL_LIST_FROM_C(self, c)
    n = c.of.list.size
    try:
        if not n:
            return b""
        raw = ctypes.string_at(c.of.list.data, _VAL_SIZE * n)
        return raw[_OF_OFFSET::_VAL_SIZE]
    finally:
        ffi.wasmtime_component_vallist_delete(byref(c.of.list))


# ---------------------------------------------- host function types, read once

_TYPES: dict[int, tuple[Any, list[Any], Any]] = {}


@ffi.wasmtime_component_func_callback_t
def _func_impl(idx, context, ty_raw, args, nargs, results, nresults):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    def run(store: StoreContext) -> None:
        func = _linker.FUNCTIONS.get(idx or 0)
        cached = _TYPES.get(idx or 0)
        if cached is None or cached[0] is not func:
            with FuncType._from_ptr(ty_raw, owner=store) as fty:  # pyright: ignore[reportPrivateUsage]
                cached = (func, [ty for _, ty in fty.params], fty.result)
            _TYPES[idx or 0] = cached
        _, param_tys, result_ty = cached
        result = func(store, *[ty.convert_from_c(args[i]) for i, ty in enumerate(param_tys[:nargs])])
        if result_ty is not None:
            result_ty.convert_to_c(store, result, results)

    return _catch_exceptions(context, run)


def apply() -> None:
    """Install every patch (idempotent)."""
    _linker.func_impl = _func_impl  # type: ignore[assignment]
    VariantLikeType._lower = _lower  # type: ignore[method-assign]
    VariantLikeType._tagged = _tagged  # type: ignore[method-assign]
    for cls in (VariantType, OptionType, ResultType):
        cls._cases = _remembering_cases(cls)  # type: ignore[method-assign]
    for cls, name, copy in _MEMBER_PROPERTIES:
        setattr(cls, name, _remembering_property(cls, name, copy))
    _enter.catch_exceptions = _catch_exceptions  # type: ignore[assignment]
    _enter.maybe_raise_last_exn = _maybe_raise_last_exn  # type: ignore[assignment]
    _linker.catch_exceptions = _catch_exceptions  # type: ignore[assignment]
    ListType.convert_to_c = _list_to_c  # type: ignore[method-assign]
    ListType.convert_from_c = _list_from_c  # type: ignore[method-assign]
    _gil.apply()


def applied() -> bool:
    """Whether the patch is installed."""
    return VariantLikeType._lower is _lower  # pyright: ignore[reportPrivateUsage]


def original_lower() -> Any:
    """wasmtime-py's own `_lower`, for tests that show the bug it has."""
    return _ORIGINAL_LOWER
