"""The one converter between JSON values and WIT values.

JSON form (the API's contract):
  record -> object keyed by WIT field names (a missing `option` field is none);
  variant -> {"case": payload} or "case" when the case has no payload;
  enum -> "case"; flags -> [names]; option -> null or the value, and an option
  directly inside an option uses {"some": v} / {"none": null};
  result -> {"ok": v} / {"err": e}, with a null payload for a side without a
  type; tuple, list -> array; char -> 1-char string; integers range-checked
  for their width; floats -> numbers or "NaN", "Infinity", "-Infinity";
  string -> string (valid Unicode: no lone surrogates).

Every error is an `InvalidValueError` whose path names the bad field, e.g.
``params.p.label: expected option<string>, got 12``.

WIT values are the Python objects wasmtime-py's component API takes and
returns. wasmtime-py represents a variant-like value either by its bare
payload or by a `Variant(tag, payload)` depending on whether the Python
classes of its cases overlap; that rule is `tagging.py`'s.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

from wasmtime.component import Record, Variant

from ..errors import InvalidValueError
from .tagging import accepts, is_tagged
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
# Integers above this may not survive a trip through a JSON float exactly.
_EXACT_FLOAT_INT = 2**53
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def describe(value: Any) -> str:
    """A short rendering of a JSON value for error messages."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _TypeMismatch(InvalidValueError):
    """The JSON value has the wrong shape for the type at `path` itself.

    An option re-raises it naming the option type, so the message reads
    ``expected option<string>, got 12`` rather than ``expected string``.
    """

    def __init__(self, path: str, ty: WitType, value: Any, hint: str = "") -> None:
        super().__init__(path, f"expected {ty.wit()}{hint}, got {describe(value)}")
        self.value = value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _key(path: str, key: str) -> str:
    """The path of a member: `a.b` for WIT-like names, `a["b c"]` otherwise."""
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


# ---------------------------------------------------------------- JSON -> WIT


def params_to_wasm(params: Any, fn: FunctionType, path: str = "params") -> list[Any]:
    """Convert call parameters given as a JSON array (by position) or object (by name) to wasmtime-py values.

    Returns one value per parameter of `fn`, in order; an `option` parameter
    left out of an object is none. Raises `InvalidValueError` (its `path`
    under `path`, e.g. `params[1]` or `params.p.label`) for a wrong count, an
    unknown or missing parameter, or a value that does not fit its type.
    """
    names = [n for n, _ in fn.params]
    if isinstance(params, list):
        if len(params) != len(fn.params):
            raise InvalidValueError(
                path,
                f"expected {_count(len(fn.params), 'parameter')} ({', '.join(names) or 'none'}), got {len(params)}",
            )
        return [to_wasm(v, t, f"{path}[{i}]") for i, (v, (_, t)) in enumerate(zip(params, fn.params))]
    if isinstance(params, dict):
        for key in params:
            if key not in names:
                raise InvalidValueError(
                    _key(path, str(key)),
                    f"unknown parameter; the function takes {', '.join(names) or 'no parameters'}",
                )
        out: list[Any] = []
        for name, ty in fn.params:
            if name in params:
                out.append(to_wasm(params[name], ty, _key(path, name)))
            elif isinstance(ty, OptionT):
                out.append(to_wasm(None, ty, _key(path, name)))
            else:
                raise InvalidValueError(_key(path, name), f"missing parameter of type {ty.wit()}")
        return out
    if params is None and not fn.params:
        return []
    if params is None:
        # An empty request body reads as null too: say what to send rather than "got null".
        raise InvalidValueError(
            path,
            f"no parameters were given (an empty body or null), and the function takes {_count(len(names), 'parameter')} "
            f"({', '.join(names)}): send them as an array (by position) or an object (by name)",
        )
    raise InvalidValueError(path, f"expected an array or an object of parameters, got {describe(params)}")


def to_wasm(value: Any, ty: WitType, path: str, *, in_option: bool = False) -> Any:
    """Convert one JSON value to the wasmtime-py value of type `ty`.

    `in_option` is set for the payload of an option: an option there takes
    the explicit {"some": v} / {"none": null} form. Raises `InvalidValueError`
    at `path` (or the path of the member at fault) when `value` does not fit
    `ty` (the JSON form is in the module docstring).
    """
    if isinstance(ty, Prim):
        return _prim_to_wasm(value, ty, path)
    if isinstance(ty, OptionT):
        return _option_to_wasm(value, ty, path, explicit=in_option)
    if isinstance(ty, ListT):
        if not isinstance(value, list):
            raise _TypeMismatch(path, ty, value)
        items = [to_wasm(v, ty.element, f"{path}[{i}]") for i, v in enumerate(value)]
        return bytes(items) if ty.element == Prim("u8") else items
    if isinstance(ty, RecordT):
        return _record_to_wasm(value, ty, path)
    if isinstance(ty, TupleT):
        if not isinstance(value, list):
            raise _TypeMismatch(path, ty, value)
        if len(value) != len(ty.elements):
            raise InvalidValueError(
                path, f"expected {ty.wit()} ({_count(len(ty.elements), 'element')}), got {_count(len(value), 'element')}"
            )
        return tuple(to_wasm(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(value, ty.elements)))
    if isinstance(ty, VariantT):
        return _variant_to_wasm(value, ty, list(ty.cases), path)
    if isinstance(ty, ResultT):
        return _variant_to_wasm(value, ty, [("ok", ty.ok), ("err", ty.err)], path)
    if isinstance(ty, EnumT):
        if not isinstance(value, str):
            raise _TypeMismatch(path, ty, value, " (one of its case names)")
        if value not in ty.cases:
            raise InvalidValueError(
                path, f"unknown case {describe(value)} of {ty.wit()}; expected one of {', '.join(ty.cases)}"
            )
        return value
    if isinstance(ty, FlagsT):
        return _flags_to_wasm(value, ty, path)
    if isinstance(ty, (ResourceT, OpaqueT)):
        raise InvalidValueError(path, f"values of type {ty.wit()} cannot be given as JSON")
    raise InvalidValueError(path, f"unsupported WIT type {ty!r}")


def _prim_to_wasm(value: Any, ty: Prim, path: str) -> Any:
    name = ty.name
    if name == "bool":
        if not isinstance(value, bool):
            raise _TypeMismatch(path, ty, value)
        return value
    if name in INT_RANGES:
        return _int_to_wasm(value, ty, path)
    if name in ("f32", "f64"):
        return _float_to_wasm(value, ty, path)
    if name == "char":
        if not isinstance(value, str) or len(value) != 1:
            raise _TypeMismatch(path, ty, value, " (a one-character string)")
        if 0xD800 <= ord(value) <= 0xDFFF:
            raise InvalidValueError(
                path, f"U+{ord(value):04X} is a lone surrogate, not a Unicode scalar value"
            )
        return value
    if name == "string":
        if not isinstance(value, str):
            raise _TypeMismatch(path, ty, value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidValueError(
                path,
                f"the string has a lone surrogate (U+{ord(value[exc.start]):04X} at index {exc.start}), "
                "which is not valid Unicode",
            ) from None
        return value
    raise InvalidValueError(path, f"unsupported primitive {name}")


def _int_to_wasm(value: Any, ty: Prim, path: str) -> int:
    name = ty.name
    if isinstance(value, float) and value.is_integer():
        if abs(value) > _EXACT_FLOAT_INT:
            raise InvalidValueError(
                path,
                f"{describe(value)} is a floating-point number too large to be an exact integer; "
                f"write {name} values as integers, without a fraction or exponent",
            )
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _TypeMismatch(path, ty, value)
    lo, hi = INT_RANGES[name]
    if not lo <= value <= hi:
        raise InvalidValueError(path, f"{value} does not fit in {name} ({lo}..{hi})")
    return value


def _float_to_wasm(value: Any, ty: Prim, path: str) -> float:
    name = ty.name
    if isinstance(value, str) and value in _FLOAT_WORDS:
        return _FLOAT_WORDS[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _TypeMismatch(path, ty, value, ' (a number or "NaN", "Infinity", "-Infinity")')
    try:
        number = float(value)
    except OverflowError:
        raise InvalidValueError(path, f"{describe(value)} does not fit in {name}") from None
    if name == "f32" and math.isfinite(number):
        try:
            number = struct.unpack("<f", struct.pack("<f", number))[0]
        except OverflowError:
            raise InvalidValueError(path, f"{describe(value)} does not fit in f32") from None
    return number


def _option_to_wasm(value: Any, ty: OptionT, path: str, *, explicit: bool) -> Any:
    tagged = is_tagged(ty)
    if explicit:
        # An option inside an option: {"some": v} / {"none": null}.
        if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("some", "none")):
            raise _TypeMismatch(path, ty, value, ' inside an option, as {"some": value} or {"none": null}')
        ((case, payload),) = value.items()
        if case == "none":
            if payload is not None:
                raise InvalidValueError(f"{path}.none", f"expected null, got {describe(payload)}")
            return Variant("none") if tagged else None
        inner = to_wasm(payload, ty.inner, f"{path}.some", in_option=True)
        return Variant("some", inner) if tagged else inner
    if value is None:
        return Variant("none") if tagged else None
    try:
        inner = to_wasm(value, ty.inner, path, in_option=True)
    except _TypeMismatch as exc:
        # A nested option's own message says how to write it; keep that one.
        if exc.path != path or isinstance(ty.inner, OptionT):
            raise
        raise _TypeMismatch(path, ty, value) from None
    return Variant("some", inner) if tagged else inner


def _record_to_wasm(value: Any, ty: RecordT, path: str) -> Record:
    if not isinstance(value, dict):
        raise _TypeMismatch(path, ty, value, " (an object)")
    names = [n for n, _ in ty.fields]
    for key in value:
        if key not in names:
            raise InvalidValueError(
                _key(path, str(key)), f"unknown field of {ty.wit()}; its fields are {', '.join(names)}"
            )
    rec = Record()
    for name, fty in ty.fields:
        if name in value:
            field_value = to_wasm(value[name], fty, _key(path, name))
        elif isinstance(fty, OptionT):
            field_value = to_wasm(None, fty, _key(path, name))
        else:
            raise InvalidValueError(_key(path, name), f"missing field of type {fty.wit()}")
        setattr(rec, name, field_value)
    return rec


def _flags_to_wasm(value: Any, ty: FlagsT, path: str) -> set[str]:
    if not isinstance(value, list):
        raise _TypeMismatch(path, ty, value, " (an array of flag names)")
    out: set[str] = set()
    for i, flag in enumerate(value):
        if not isinstance(flag, str) or flag not in ty.flags:
            raise InvalidValueError(
                f"{path}[{i}]", f"unknown flag {describe(flag)} of {ty.wit()}; expected any of {', '.join(ty.flags)}"
            )
        out.add(flag)
    return out


def _variant_to_wasm(value: Any, ty: VariantT | ResultT, cases: list[tuple[str, WitType | None]], path: str) -> Any:
    names = [n for n, _ in cases]
    if isinstance(value, str):
        case, payload, given = value, None, False
    elif isinstance(value, dict) and len(value) == 1:
        ((case, payload),) = value.items()
        given = True
    else:
        form = '{"ok": value} or {"err": value}' if isinstance(ty, ResultT) else '{"case": payload} or "case"'
        raise _TypeMismatch(path, ty, value, f" as {form} (cases: {', '.join(names)})")
    if case not in names:
        raise InvalidValueError(path, f"unknown case {describe(case)} of {ty.wit()}; expected one of {', '.join(names)}")
    case_ty = dict(cases)[case]
    case_path = _key(path, case)
    if case_ty is None:
        if payload is not None:
            raise InvalidValueError(case_path, f"case '{case}' has no payload; expected null, got {describe(payload)}")
        wasm_payload = None
    elif not given:
        raise InvalidValueError(
            path, f"case '{case}' of {ty.wit()} needs a payload of type {case_ty.wit()}: write {{\"{case}\": value}}"
        )
    else:
        wasm_payload = to_wasm(payload, case_ty, case_path)
    if is_tagged(ty):
        return Variant(case, wasm_payload)
    return wasm_payload


# ---------------------------------------------------------------- WIT -> JSON


def from_wasm(value: Any, ty: WitType | None, *, in_option: bool = False) -> Any:
    """Convert a wasmtime-py value of type `ty` to its JSON form (None for no type: a function without result).

    TypeError for a resource or async type, or a value of no case of its variant.
    """
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
        if is_tagged(ty):
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
    if is_tagged(ty):
        return value.tag, value.payload
    # Untagged: the payload's Python class identifies the case (the classes of
    # the cases are disjoint, that is why wasmtime-py left the tag out).
    for name, case_ty in cases:
        if accepts(case_ty, value):
            return name, value
    raise TypeError(f"cannot tell which case of {ty.wit()} the value {value!r} is")


def canonical(value: Any, ty: WitType, path: str) -> Any:
    """Validate a JSON value against `ty` and return its canonical JSON form; `InvalidValueError` as `to_wasm`."""
    return from_wasm(to_wasm(value, ty, path), ty)


def canonical_params(params: Any, fn: FunctionType, path: str = "params") -> list[Any]:
    """Validate parameters and return them canonically, as a positional array; `InvalidValueError` as `params_to_wasm`."""
    values = params_to_wasm(params, fn, path)
    return [from_wasm(v, t) for v, (_, t) in zip(values, fn.params)]
