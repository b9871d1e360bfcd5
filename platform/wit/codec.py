"""The one converter between JSON values and WIT values.

JSON form (the API's contract):
  record -> object keyed by WIT field names; variant -> {"case": payload} or
  "case"; enum -> "case"; flags -> [names]; option -> null or the value, an
  option directly inside an option uses {"some": v} / {"none": null};
  result -> {"ok": v} / {"err": e}; tuple, list -> array; char -> 1-char
  string; integers range-checked; floats -> numbers or "NaN", "Infinity",
  "-Infinity".

WIT values are the Python objects wasmtime-py's component API takes and
returns. wasmtime-py represents a variant-like value either by its bare
payload or by a `Variant(tag, payload)` depending on whether the payload
classes of its cases overlap; `_is_tagged` mirrors that rule exactly.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from wasmtime.component import Record, Variant

from ..errors import InvalidValueError
from .types import (
    INT_RANGES,
    EnumT,
    FlagsT,
    FunctionType,
    ListT,
    OpaqueT,
    OptionT,
    Prim,
    RecordT,
    ResourceT,
    ResultT,
    TupleT,
    VariantT,
    WitType,
)

_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def describe(value: Any) -> str:
    """A short rendering of a JSON value for error messages."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _bad(path: str, ty: WitType, value: Any) -> InvalidValueError:
    return InvalidValueError(path, f"expected {ty.wit()}, got {describe(value)}")


# ---------------------------------------------------------------- JSON -> WIT


def params_to_wasm(params: Any, fn: FunctionType, path: str = "params") -> list[Any]:
    """Convert call parameters given as a JSON array (by position) or object (by name)."""
    names = [n for n, _ in fn.params]
    if isinstance(params, list):
        if len(params) != len(fn.params):
            raise InvalidValueError(
                path,
                f"expected {len(fn.params)} parameter{'s' if len(fn.params) != 1 else ''}"
                f" ({', '.join(names) or 'none'}), got {len(params)}",
            )
        return [to_wasm(v, t, f"{path}[{i}]") for i, (v, (_, t)) in enumerate(zip(params, fn.params))]
    if isinstance(params, dict):
        unknown = [k for k in params if k not in names]
        if unknown:
            raise InvalidValueError(
                f"{path}.{unknown[0]}",
                f"unknown parameter; the function takes {', '.join(names) or 'no parameters'}",
            )
        out: list[Any] = []
        for name, ty in fn.params:
            if name in params:
                out.append(to_wasm(params[name], ty, f"{path}.{name}"))
            elif isinstance(ty, OptionT):
                out.append(to_wasm(None, ty, f"{path}.{name}"))
            else:
                raise InvalidValueError(f"{path}.{name}", f"missing parameter of type {ty.wit()}")
        return out
    if params is None and not fn.params:
        return []
    raise InvalidValueError(
        path, f"expected an array or an object of parameters, got {describe(params)}"
    )


def to_wasm(value: Any, ty: WitType, path: str, *, in_option: bool = False) -> Any:
    """Convert one JSON value to the wasmtime-py value of type `ty`."""
    if isinstance(ty, Prim):
        return _prim_to_wasm(value, ty, path)
    if isinstance(ty, OptionT):
        return _option_to_wasm(value, ty, path, explicit=in_option)
    if isinstance(ty, ListT):
        if not isinstance(value, list):
            raise _bad(path, ty, value)
        items = [to_wasm(v, ty.element, f"{path}[{i}]") for i, v in enumerate(value)]
        if ty.element == Prim("u8"):
            return bytes(items)
        return items
    if isinstance(ty, RecordT):
        return _record_to_wasm(value, ty, path)
    if isinstance(ty, TupleT):
        if not isinstance(value, list) or len(value) != len(ty.elements):
            if isinstance(value, list):
                raise InvalidValueError(
                    path,
                    f"expected {ty.wit()} ({len(ty.elements)} elements), got {len(value)} elements",
                )
            raise _bad(path, ty, value)
        return tuple(to_wasm(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(value, ty.elements)))
    if isinstance(ty, VariantT):
        case, payload_json = _case_of(value, ty, [c for c, _ in ty.cases], path)
        case_ty = dict(ty.cases)[case]
        return _variant_value(ty, case, case_ty, payload_json, f"{path}.{case}")
    if isinstance(ty, EnumT):
        if not isinstance(value, str):
            raise _bad(path, ty, value)
        if value not in ty.cases:
            raise InvalidValueError(path, f"unknown case '{value}' of {ty.wit()}; expected one of {', '.join(ty.cases)}")
        return value
    if isinstance(ty, FlagsT):
        if not isinstance(value, list):
            raise _bad(path, ty, value)
        out: set[str] = set()
        for i, flag in enumerate(value):
            if not isinstance(flag, str) or flag not in ty.flags:
                raise InvalidValueError(
                    f"{path}[{i}]",
                    f"unknown flag {describe(flag)} of {ty.wit()}; expected any of {', '.join(ty.flags)}",
                )
            out.add(flag)
        return out
    if isinstance(ty, ResultT):
        case, payload_json = _case_of(value, ty, ["ok", "err"], path)
        case_ty = ty.ok if case == "ok" else ty.err
        return _variant_value(ty, case, case_ty, payload_json, f"{path}.{case}")
    if isinstance(ty, (ResourceT, OpaqueT)):
        raise InvalidValueError(path, f"values of type {ty.wit()} cannot be given as JSON")
    raise InvalidValueError(path, f"unsupported WIT type {ty!r}")


def _prim_to_wasm(value: Any, ty: Prim, path: str) -> Any:
    name = ty.name
    if name == "bool":
        if not isinstance(value, bool):
            raise _bad(path, ty, value)
        return value
    if name in INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(path, ty, value)
        lo, hi = INT_RANGES[name]
        if not lo <= value <= hi:
            raise InvalidValueError(path, f"{value} does not fit in {name} ({lo}..{hi})")
        return value
    if name in ("f32", "f64"):
        if isinstance(value, str) and value in _FLOAT_WORDS:
            return _FLOAT_WORDS[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidValueError(
                path, f"expected {name} (a number or \"NaN\", \"Infinity\", \"-Infinity\"), got {describe(value)}"
            )
        number = float(value)
        if name == "f32" and math.isfinite(number):
            try:
                number = struct.unpack("<f", struct.pack("<f", number))[0]
            except OverflowError:
                raise InvalidValueError(path, f"{value} does not fit in f32") from None
        return number
    if name == "char":
        if not isinstance(value, str) or len(value) != 1:
            raise InvalidValueError(path, f"expected char (a one-character string), got {describe(value)}")
        if 0xD800 <= ord(value) <= 0xDFFF:
            raise InvalidValueError(path, "a lone surrogate is not a Unicode scalar value")
        return value
    if name == "string":
        if not isinstance(value, str):
            raise _bad(path, ty, value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValueError(path, "string contains a lone surrogate, which is not valid Unicode") from None
        return value
    raise InvalidValueError(path, f"unsupported primitive {name}")


def _option_to_wasm(value: Any, ty: OptionT, path: str, *, explicit: bool) -> Any:
    tagged = _is_tagged(ty)
    if explicit:
        # An option inside an option: {"some": v} / {"none": null}.
        case, payload = _case_of(value, ty, ["none", "some"], path)
        if case == "none":
            if payload is not None:
                raise InvalidValueError(f"{path}.none", f"expected null, got {describe(payload)}")
            return Variant("none") if tagged else None
        inner = to_wasm(payload, ty.inner, f"{path}.some", in_option=True)
        return Variant("some", inner) if tagged else inner
    if value is None:
        return Variant("none") if tagged else None
    inner = to_wasm(value, ty.inner, path, in_option=True)
    return Variant("some", inner) if tagged else inner


def _record_to_wasm(value: Any, ty: RecordT, path: str) -> Record:
    if not isinstance(value, dict):
        raise _bad(path, ty, value)
    names = {n for n, _ in ty.fields}
    for key in value:
        if key not in names:
            raise InvalidValueError(
                f"{path}.{key}",
                f"unknown field of {ty.wit()}; its fields are {', '.join(n for n, _ in ty.fields)}",
            )
    rec = Record()
    for name, fty in ty.fields:
        if name in value:
            field_value = to_wasm(value[name], fty, f"{path}.{name}")
        elif isinstance(fty, OptionT):
            field_value = to_wasm(None, fty, f"{path}.{name}")
        else:
            raise InvalidValueError(f"{path}.{name}", f"missing field of type {fty.wit()}")
        setattr(rec, name, field_value)
    return rec


def _case_of(value: Any, ty: WitType, cases: list[str], path: str) -> tuple[str, Any]:
    if isinstance(value, str):
        if value not in cases:
            raise InvalidValueError(path, f"unknown case '{value}' of {ty.wit()}; expected one of {', '.join(cases)}")
        return value, None
    if isinstance(value, dict) and len(value) == 1:
        ((case, payload),) = value.items()
        if case not in cases:
            raise InvalidValueError(path, f"unknown case '{case}' of {ty.wit()}; expected one of {', '.join(cases)}")
        return case, payload
    raise InvalidValueError(
        path,
        f"expected {ty.wit()} as {{\"case\": payload}} or \"case\" (cases: {', '.join(cases)}), got {describe(value)}",
    )


def _variant_value(ty: VariantT | ResultT, case: str, case_ty: WitType | None, payload: Any, path: str) -> Any:
    if case_ty is None:
        if payload is not None:
            raise InvalidValueError(path, f"case '{case}' has no payload; expected null, got {describe(payload)}")
        wasm_payload = None
    else:
        wasm_payload = to_wasm(payload, case_ty, path)
    if _is_tagged(ty):
        return Variant(case, wasm_payload)
    return wasm_payload


# ---------------------------------------------------------------- WIT -> JSON


def from_wasm(value: Any, ty: WitType | None, *, in_option: bool = False) -> Any:
    """Convert a wasmtime-py value of type `ty` to its JSON form."""
    if ty is None:
        return None
    if isinstance(ty, Prim):
        if ty.name in ("f32", "f64"):
            number = float(value)
            if math.isnan(number):
                return "NaN"
            if math.isinf(number):
                return "Infinity" if number > 0 else "-Infinity"
            return number
        return value
    if isinstance(ty, OptionT):
        if _is_tagged(ty):
            is_some = value.tag == "some"
            payload = value.payload
        else:
            is_some = value is not None
            payload = value
        inner = from_wasm(payload, ty.inner, in_option=True) if is_some else None
        if in_option:
            return {"some": inner} if is_some else {"none": None}
        return inner
    if isinstance(ty, ListT):
        if isinstance(value, (bytes, bytearray)):
            return list(value)
        return [from_wasm(v, ty.element) for v in value]
    if isinstance(ty, RecordT):
        return {name: from_wasm(getattr(value, name), fty) for name, fty in ty.fields}
    if isinstance(ty, TupleT):
        return [from_wasm(v, t) for v, t in zip(value, ty.elements)]
    if isinstance(ty, VariantT):
        case, payload = _case_from_wasm(ty, list(ty.cases), value)
        case_ty = dict(ty.cases)[case]
        return case if case_ty is None else {case: from_wasm(payload, case_ty)}
    if isinstance(ty, EnumT):
        return value
    if isinstance(ty, FlagsT):
        return [f for f in ty.flags if f in value]
    if isinstance(ty, ResultT):
        case, payload = _case_from_wasm(ty, [("ok", ty.ok), ("err", ty.err)], value)
        case_ty = ty.ok if case == "ok" else ty.err
        return {case: from_wasm(payload, case_ty)}
    raise TypeError(f"values of type {ty.wit()} have no JSON form")


def _case_from_wasm(ty: WitType, cases: list[tuple[str, WitType | None]], value: Any) -> tuple[str, Any]:
    if _is_tagged(ty):
        return value.tag, value.payload
    # Untagged: the payload's Python class identifies the case (the classes of
    # the cases are disjoint, that is why wasmtime-py left the tag out).
    for name, case_ty in cases:
        if case_ty is None:
            if value is None:
                return name, None
            continue
        if type(value).__name__ in _classes(case_ty):
            return name, value
    raise TypeError(f"cannot tell which case of {ty.wit()} the value {value!r} is")


def result_to_json(value: Any, ty: WitType | None) -> Any:
    """The JSON form of a function's return value (None for no result)."""
    return None if ty is None else from_wasm(value, ty)


def canonical(value: Any, ty: WitType, path: str) -> Any:
    """Validate a JSON value against `ty` and return its canonical JSON form."""
    return from_wasm(to_wasm(value, ty, path), ty)


def canonical_params(params: Any, fn: FunctionType, path: str = "params") -> list[Any]:
    """Validate parameters and return them canonically, as a positional array."""
    values = params_to_wasm(params, fn, path)
    return [from_wasm(v, t) for v, (_, t) in zip(values, fn.params)]


# ------------------------------------------------- wasmtime-py's tagging rule


def _classes(ty: WitType | None) -> frozenset[str]:
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
    if isinstance(ty, (EnumT,)):
        return frozenset({"str"})
    if isinstance(ty, FlagsT):
        return frozenset({"set"})
    if isinstance(ty, (VariantT, OptionT, ResultT)):
        if _is_tagged(ty):
            return frozenset({"Variant"})
        out: set[str] = set()
        for _, case_ty in _cases(ty):
            out |= _classes(case_ty)
        return frozenset(out)
    return frozenset({"ResourceAny", "ResourceHost"})


def _cases(ty: VariantT | OptionT | ResultT) -> list[tuple[str, WitType | None]]:
    if isinstance(ty, VariantT):
        return list(ty.cases)
    if isinstance(ty, OptionT):
        return [("none", None), ("some", ty.inner)]
    return [("ok", ty.ok), ("err", ty.err)]


def _is_tagged(ty: WitType) -> bool:
    """Whether wasmtime-py represents values of this variant-like type as `Variant`."""
    seen: set[str] = set()
    for _, case_ty in _cases(ty):  # type: ignore[arg-type]
        case = _classes(case_ty)
        if case & seen:
            return True
        seen |= case
    return False

