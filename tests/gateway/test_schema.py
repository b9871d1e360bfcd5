"""JSON Schema of WIT types: accepts the codec's canonical JSON, rejects what the codec rejects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from dolmen.gateway.schema import json_schema, params_schema
from dolmen.platform.errors import InvalidValueError
from dolmen.platform.wit.codec import canonical
from dolmen.platform.wit.types import (
    EnumT,
    FlagsT,
    FunctionType,
    ListT,
    OptionT,
    Prim,
    RecordT,
    ResultT,
    TupleT,
    VariantT,
    WitType,
)
from tests.support.wit_values import json_values, wit_types


def accepts(ty: WitType, value: Any) -> bool:
    return Draft202012Validator(json_schema(ty)).is_valid(value)


def codec_accepts(ty: WitType, value: Any) -> bool:
    try:
        canonical(value, ty, "v")
    except InvalidValueError:
        return False
    return True


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_every_canonical_value_validates_against_its_schema(data: st.DataObject) -> None:
    """For random WIT types, every value in the codec's canonical form validates."""
    ty = data.draw(wit_types())
    value = data.draw(json_values(ty))
    Draft202012Validator.check_schema(json_schema(ty))
    assert accepts(ty, value), (ty.wit(), value)


CASES: list[tuple[WitType, Any]] = [
    (Prim("u8"), 256),
    (Prim("s8"), -129),
    (Prim("u64"), 2**64),
    (Prim("u32"), 1.5),
    (Prim("u32"), "1"),
    (Prim("bool"), 0),
    (Prim("char"), "ab"),
    (Prim("char"), ""),
    (Prim("f64"), "nan"),
    (Prim("f64"), None),
    (Prim("string"), 3),
    (OptionT(Prim("u8")), "x"),
    (OptionT(OptionT(Prim("u8"))), 3),
    (OptionT(OptionT(Prim("u8"))), {"some": None, "none": None}),
    (ListT(Prim("u8")), [1, 300]),
    (TupleT((Prim("u8"), Prim("string"))), [1]),
    (TupleT((Prim("u8"), Prim("string"))), [1, "a", 2]),
    (RecordT((("a", Prim("u8")), ("b", OptionT(Prim("string")))), "r"), {"b": "x"}),
    (RecordT((("a", Prim("u8")),), "r"), {"a": 1, "c": 2}),
    (VariantT((("none", None), ("some", Prim("u8"))), "v"), "some"),
    (VariantT((("none", None), ("some", Prim("u8"))), "v"), {"other": 1}),
    (VariantT((("none", None), ("some", Prim("u8"))), "v"), {"none": 1}),
    (ResultT(Prim("u8"), Prim("string")), {"ok": 1, "err": "x"}),
    (ResultT(Prim("u8"), None), {"err": 1}),
    (EnumT(("red", "green"), "color"), "blue"),
    (FlagsT(("a", "b"), "f"), ["c"]),
]


@pytest.mark.parametrize(("ty", "value"), CASES, ids=[f"{t.wit()}={v!r}" for t, v in CASES])
def test_schema_rejects_what_the_codec_rejects(ty: WitType, value: Any) -> None:
    """Values the codec refuses fail the schema too."""
    assert not codec_accepts(ty, value)
    assert not accepts(ty, value)


ACCEPTED: list[tuple[WitType, Any]] = [
    (Prim("u32"), 3.0),
    (Prim("f32"), "-Infinity"),
    (Prim("f64"), 2),
    (OptionT(OptionT(Prim("u8"))), {"none": None}),
    (OptionT(OptionT(Prim("u8"))), {"some": 3}),
    (OptionT(OptionT(Prim("u8"))), None),
    (RecordT((("a", Prim("u8")), ("b", OptionT(Prim("string")))), "r"), {"a": 1}),
    (VariantT((("none", None), ("some", Prim("u8"))), "v"), {"none": None}),
    (ResultT(None, None), "ok"),
    (ResultT(None, Prim("string")), {"ok": None}),
    (FlagsT(("a", "b"), "f"), ["b", "a"]),
]


@pytest.mark.parametrize(("ty", "value"), ACCEPTED, ids=[f"{t.wit()}={v!r}" for t, v in ACCEPTED])
def test_schema_accepts_the_codec_s_lenient_forms(ty: WitType, value: Any) -> None:
    """Non-canonical forms the codec accepts (3.0 for an integer, a bare case name) validate too."""
    assert codec_accepts(ty, value)
    assert accepts(ty, value)


def test_params_schema_takes_an_object_or_an_array() -> None:
    """Params validate by name (option params may be left out) or by position."""
    fn = FunctionType((("n", Prim("u32")), ("label", OptionT(Prim("string")))), None)
    schema = Draft202012Validator(params_schema(fn))
    assert schema.is_valid({"n": 1})
    assert schema.is_valid({"n": 1, "label": None})
    assert schema.is_valid([1, "x"])
    assert not schema.is_valid([1])
    assert not schema.is_valid({"label": "x"})
    assert not schema.is_valid(None)
    assert Draft202012Validator(params_schema(FunctionType((), None))).is_valid(None)
