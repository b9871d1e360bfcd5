"""JSON Schema (2020-12, as OpenAPI 3.1 uses it) for the codec's JSON form of WIT types.

The schemas accept exactly what `platform/wit/codec.py` accepts, with the
JSON Schema vocabulary's limits: integer ranges and a char's length are
checked, a string's lone surrogates are not (JSON Schema cannot say it).
"""

from __future__ import annotations

from typing import Any

from ..platform.wit.types import (
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

Schema = dict[str, Any]

FLOAT_WORDS = ["NaN", "Infinity", "-Infinity"]


def json_schema(ty: WitType | None, *, in_option: bool = False) -> Schema:
    """The schema of values of `ty` (`in_option`: the payload of an option, see the codec).

    `None` (no result) is `{"type": "null"}`; a resource or opaque type has no JSON form (`{"not": {}}`).
    TypeError for a type this module does not know.
    """
    if ty is None:
        return {"type": "null"}
    schema = _schema(ty, in_option=in_option)
    name = getattr(ty, "name", None)
    if isinstance(ty, (RecordT, VariantT, EnumT, FlagsT)) and name:
        schema = {"title": name, **schema}
    return schema


def _schema(ty: WitType, *, in_option: bool) -> Schema:
    if isinstance(ty, Prim):
        return prim_schema(ty)
    if isinstance(ty, OptionT):
        inner = json_schema(ty.inner, in_option=True)
        if in_option:
            return {
                "oneOf": [
                    _single("some", inner),
                    _single("none", {"type": "null"}),
                ]
            }
        return {"anyOf": [{"type": "null"}, inner]}
    if isinstance(ty, ListT):
        return {"type": "array", "items": json_schema(ty.element)}
    if isinstance(ty, TupleT):
        n = len(ty.elements)
        return {
            "type": "array",
            "prefixItems": [json_schema(e) for e in ty.elements],
            "items": False,
            "minItems": n,
            "maxItems": n,
        }
    if isinstance(ty, RecordT):
        return {
            "type": "object",
            "properties": {name: json_schema(fty) for name, fty in ty.fields},
            "required": [name for name, fty in ty.fields if not isinstance(fty, OptionT)],
            "additionalProperties": False,
        }
    if isinstance(ty, VariantT):
        return _cases_schema(list(ty.cases))
    if isinstance(ty, ResultT):
        return _cases_schema([("ok", ty.ok), ("err", ty.err)])
    if isinstance(ty, EnumT):
        return {"type": "string", "enum": list(ty.cases)}
    if isinstance(ty, FlagsT):
        return {"type": "array", "items": {"type": "string", "enum": list(ty.flags)}}
    if isinstance(ty, (ResourceT, OpaqueT)):
        return {"not": {}, "description": f"{ty.wit()} has no JSON form"}
    raise TypeError(f"no JSON Schema for {ty!r}")


def prim_schema(ty: Prim) -> Schema:
    """Schema of a primitive: ranges for integers, the three words for floats."""
    name = ty.name
    if name == "bool":
        return {"type": "boolean"}
    if name in INT_RANGES:
        lo, hi = INT_RANGES[name]
        return {"type": "integer", "minimum": lo, "maximum": hi}
    if name in ("f32", "f64"):
        return {"oneOf": [{"type": "number"}, {"type": "string", "enum": FLOAT_WORDS}]}
    if name == "char":
        return {"type": "string", "minLength": 1, "maxLength": 1}
    return {"type": "string"}


def _single(key: str, value: Schema) -> Schema:
    return {"type": "object", "properties": {key: value}, "required": [key], "additionalProperties": False}


def _cases_schema(cases: list[tuple[str, WitType | None]]) -> Schema:
    """A variant or result: {"case": payload}, or "case" for a case without payload."""
    bare = [name for name, cty in cases if cty is None]
    options: list[Schema] = [_single(name, json_schema(cty)) for name, cty in cases]
    if bare:
        options.append({"type": "string", "enum": bare})
    return {"oneOf": options}


def params_schema(fn: FunctionType) -> Schema:
    """The parameters as an object by name or an array by position."""
    by_name: Schema = {
        "type": "object",
        "properties": {name: {**json_schema(ty), "description": f"WIT type {ty.wit()}"} for name, ty in fn.params},
        "required": [name for name, ty in fn.params if not isinstance(ty, OptionT)],
        "additionalProperties": False,
    }
    by_position: Schema = {
        "type": "array",
        "prefixItems": [json_schema(ty) for _, ty in fn.params],
        "items": False,
        "minItems": len(fn.params),
        "maxItems": len(fn.params),
    }
    options: list[Schema] = [by_name, by_position]
    if not fn.params:
        options.append({"type": "null"})
    return {"oneOf": options}


def result_schema(fn: FunctionType) -> Schema:
    """The return value's schema (null for a function without result)."""
    schema = json_schema(fn.result)
    if fn.result is not None:
        schema = {**schema, "description": f"WIT type {fn.result.wit()}"}
    return schema
