"""The JSON <-> WIT codec: canonical forms, wasmtime-py representations, and exact error messages."""

from __future__ import annotations

import math
from typing import Any

import pytest
from wasmtime.component import Record, Variant

from dolmen.platform.errors import InvalidValueError, UsageError
from dolmen.platform.wit.codec import (
    canonical,
    canonical_params,
    describe,
    from_wasm,
    params_to_wasm,
    to_wasm,
)
from dolmen.platform.wit.tagging import is_tagged
from dolmen.platform.wit.types import (
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

BOOL, U8, U32, U64, S8, S64 = Prim("bool"), Prim("u8"), Prim("u32"), Prim("u64"), Prim("s8"), Prim("s64")
F32, F64, CHAR, STRING = Prim("f32"), Prim("f64"), Prim("char"), Prim("string")
POINT = RecordT((("x", Prim("s32")), ("y", Prim("s32"))), "point")
PERSON = RecordT((("first-name", STRING), ("last-name", OptionT(STRING)), ("age", U8)), "person")
LOOSE = VariantT((("num", U32), ("text", STRING), ("empty", None)), "loose")
STRICT = VariantT((("first", U32), ("second", U32), ("neither", None)), "strict")
COUNT_OR_FLAG = VariantT((("count", U32), ("flag", BOOL)), "count-or-flag")
COLOR = EnumT(("red", "green", "light-blue"), "color")
PERMS = FlagsT(("read", "write", "run-as-admin"), "permissions")
MIX = FunctionType((("count", U8), ("label", STRING), ("note", OptionT(STRING))), None)
LABELLED = FunctionType((("p", RecordT((("label", OptionT(STRING)),), "labelled")),), None)


def error_of(value: Any, ty: WitType) -> str:
    """The message of the error converting `value` to `ty` at path `v`."""
    with pytest.raises(InvalidValueError) as info:
        to_wasm(value, ty, "v")
    return str(info.value)


# ------------------------------------------------------------ canonical forms


@pytest.mark.parametrize(
    ("ty", "given", "expected"),
    [
        (U8, 3.0, 3),
        (U64, 2**64 - 1, 2**64 - 1),
        (S64, -(2**63), -(2**63)),
        (F64, 3, 3.0),
        (F64, "Infinity", "Infinity"),
        (F64, "-Infinity", "-Infinity"),
        (F64, "NaN", "NaN"),
        (F64, math.nan, "NaN"),
        (F32, 0.1, 0.10000000149011612),
        (F32, 3.4028234663852886e38, 3.4028234663852886e38),
        (CHAR, "😀", "😀"),
        (STRING, "a\u0000b😀é", "a\u0000b😀é"),
        (ListT(U8), [0, 255], [0, 255]),
        (PERMS, ["write", "read", "write"], ["read", "write"]),
        (PERSON, {"first-name": "Ada", "age": 36}, {"first-name": "Ada", "last-name": None, "age": 36}),
        (LOOSE, {"empty": None}, "empty"),
        (LOOSE, "empty", "empty"),
        (OptionT(U32), None, None),
        (OptionT(OptionT(U32)), None, None),
        (OptionT(OptionT(U32)), {"none": None}, {"none": None}),
        (OptionT(OptionT(U32)), {"some": 5}, {"some": 5}),
        (ResultT(None, STRING), {"ok": None}, {"ok": None}),
        (ResultT(None, STRING), "ok", {"ok": None}),
        (ResultT(None, None), {"err": None}, {"err": None}),
        (TupleT((U8, STRING)), [1, "a"], [1, "a"]),
    ],
)
def test_canonical_forms(ty: WitType, given: Any, expected: Any) -> None:
    """Accepted JSON spellings convert to one canonical JSON form."""
    assert canonical(given, ty, "v") == expected


def test_positional_and_named_params_agree() -> None:
    """Params by position and by name give the same positional canonical array; omitted options are null."""
    assert canonical_params([1, "x", None], MIX) == [1, "x", None]
    assert canonical_params({"label": "x", "count": 1}, MIX) == [1, "x", None]
    assert canonical_params({"count": 1, "label": "x", "note": "n"}, MIX) == [1, "x", "n"]


def test_no_params_accepts_empty_array_object_or_null() -> None:
    """A function without parameters takes [], {} or null."""
    fn = FunctionType((), None)
    assert params_to_wasm([], fn) == params_to_wasm({}, fn) == params_to_wasm(None, fn) == []


# ------------------------------------------------- wasmtime-py representations


def test_untagged_variant_lowers_to_bare_payload() -> None:
    """A variant with disjoint payload classes becomes its bare payload, as wasmtime-py expects."""
    assert not is_tagged(LOOSE)
    assert to_wasm({"num": 3}, LOOSE, "v") == 3
    assert to_wasm({"text": "3"}, LOOSE, "v") == "3"
    assert to_wasm("empty", LOOSE, "v") is None


def test_tagged_variant_lowers_to_variant_objects() -> None:
    """A variant whose cases share a payload class becomes Variant(tag, payload)."""
    assert is_tagged(STRICT)
    assert to_wasm({"second": 3}, STRICT, "v") == Variant("second", 3)
    assert from_wasm(Variant("neither"), STRICT) == "neither"


def test_bool_and_int_cases_stay_apart_when_decoding() -> None:
    """An untagged value True is the bool case and 1 the integer case, although bool is an int in Python."""
    assert not is_tagged(COUNT_OR_FLAG)
    assert from_wasm(True, COUNT_OR_FLAG) == {"flag": True}
    assert from_wasm(1, COUNT_OR_FLAG) == {"count": 1}
    assert from_wasm(False, ResultT(U32, BOOL)) == {"err": False}
    assert from_wasm(0, ResultT(U32, BOOL)) == {"ok": 0}


def test_none_payload_of_an_untagged_option_case_is_recognized() -> None:
    """In variant { maybe(option<u32>), text(string) } the value None is `maybe` holding none."""
    maybe = VariantT((("maybe", OptionT(U32)), ("text", STRING)), "maybe-or-text")
    assert not is_tagged(maybe)
    assert from_wasm(None, maybe) == {"maybe": None}
    assert from_wasm("hi", maybe) == {"text": "hi"}
    assert to_wasm({"maybe": None}, maybe, "v") is None


@pytest.mark.parametrize(
    ("ty", "tagged"),
    [
        (OptionT(U32), False),
        (OptionT(OptionT(U32)), True),
        (OptionT(LOOSE), True),
        (OptionT(STRICT), False),
        (ResultT(U32, STRING), False),
        (ResultT(STRING, STRING), True),
        (ResultT(None, STRING), False),
        (ResultT(U32, None), False),
        (ResultT(None, None), True),
        (ResultT(OptionT(STRING), OptionT(U8)), True),
        (ResultT(ListT(U8), ListT(STRING)), False),
        (VariantT((("a", EnumT(("x",), "e")), ("b", STRING)), "v"), True),
        (VariantT((("a", F32), ("b", U32)), "v"), False),
    ],
)
def test_tagging_rule_matches_wasmtime_py(ty: WitType, tagged: bool) -> None:
    """The codec predicts wasmtime-py's choice between bare payloads and Variant objects."""
    assert is_tagged(ty) is tagged


def test_record_and_bytes_representations() -> None:
    """Records become wasmtime Record objects with kebab-case attributes; list<u8> becomes bytes."""
    rec = to_wasm({"first-name": "Ada", "age": 36}, PERSON, "v")
    assert isinstance(rec, Record)
    assert getattr(rec, "first-name") == "Ada" and getattr(rec, "last-name") is None
    assert to_wasm([1, 2], ListT(U8), "v") == b"\x01\x02"
    assert from_wasm(b"\x01\x02", ListT(U8)) == [1, 2]


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("ty", "value", "message"),
    [
        (BOOL, 1, "v: expected bool, got 1"),
        (BOOL, "true", 'v: expected bool, got "true"'),
        (U8, 300, "v: 300 does not fit in u8 (0..255)"),
        (U8, -1, "v: -1 does not fit in u8 (0..255)"),
        (S8, 128, "v: 128 does not fit in s8 (-128..127)"),
        (S8, -129, "v: -129 does not fit in s8 (-128..127)"),
        (U64, 2**64, "v: 18446744073709551616 does not fit in u64 (0..18446744073709551615)"),
        (S64, 2**63, "v: 9223372036854775808 does not fit in s64 (-9223372036854775808..9223372036854775807)"),
        (U8, 3.5, "v: expected u8, got 3.5"),
        (U8, "3", 'v: expected u8, got "3"'),
        (U8, True, "v: expected u8, got true"),
        (U8, None, "v: expected u8, got null"),
        (
            U64,
            1e20,
            "v: 1e+20 is a floating-point number too large to be an exact integer; "
            "write u64 values as integers, without a fraction or exponent",
        ),
        (F32, 1e39, "v: 1e+39 does not fit in f32"),
        (F32, -1e39, "v: -1e+39 does not fit in f32"),
        (F32, "nan", 'v: expected f32 (a number or "NaN", "Infinity", "-Infinity"), got "nan"'),
        (F64, True, 'v: expected f64 (a number or "NaN", "Infinity", "-Infinity"), got true'),
        (F64, [1.0], 'v: expected f64 (a number or "NaN", "Infinity", "-Infinity"), got [1.0]'),
        (CHAR, "ab", 'v: expected char (a one-character string), got "ab"'),
        (CHAR, "", 'v: expected char (a one-character string), got ""'),
        (CHAR, 65, "v: expected char (a one-character string), got 65"),
        (CHAR, "\ud800", "v: U+D800 is a lone surrogate, not a Unicode scalar value"),
        (STRING, 12, "v: expected string, got 12"),
        (STRING, "a\udc00b", "v: the string has a lone surrogate (U+DC00 at index 1), which is not valid Unicode"),
        (ListT(U8), {"a": 1}, 'v: expected list<u8>, got {"a": 1}'),
        (ListT(U8), [1, 256], "v[1]: 256 does not fit in u8 (0..255)"),
        (ListT(ListT(POINT)), [[], [{"x": 1}]], "v[1][0].y: missing field of type s32"),
        (TupleT((U32, STRING)), [1], "v: expected tuple<u32, string> (2 elements), got 1 element"),
        (TupleT((U32, STRING)), [1, "a", 2], "v: expected tuple<u32, string> (2 elements), got 3 elements"),
        (TupleT((U32, STRING)), "1,a", 'v: expected tuple<u32, string>, got "1,a"'),
        (TupleT((U32, STRING)), [1, 2], "v[1]: expected string, got 2"),
        (POINT, 5, "v: expected point (an object), got 5"),
        (POINT, [1, 2], "v: expected point (an object), got [1, 2]"),
        (POINT, {"x": 1}, "v.y: missing field of type s32"),
        (POINT, {"x": 1, "y": 2, "z": 3}, "v.z: unknown field of point; its fields are x, y"),
        (POINT, {"x": 1, "y": 2, "a b": 3}, 'v["a b"]: unknown field of point; its fields are x, y'),
        (POINT, {"x": "1", "y": 2}, 'v.x: expected s32, got "1"'),
        (PERSON, {"first-name": "A", "age": 1, "last-name": 7}, "v.last-name: expected option<string>, got 7"),
        (PERSON, {"first_name": "A", "age": 1}, "v.first_name: unknown field of person; its fields are first-name, last-name, age"),
        (OptionT(STRING), 12, "v: expected option<string>, got 12"),
        (OptionT(POINT), "p", 'v: expected option<point>, got "p"'),
        (OptionT(U8), 300, "v: 300 does not fit in u8 (0..255)"),
        (OptionT(POINT), {"x": 1}, "v.y: missing field of type s32"),
        (
            OptionT(OptionT(U32)),
            3,
            'v: expected option<u32> inside an option, as {"some": value} or {"none": null}, got 3',
        ),
        (OptionT(OptionT(U32)), {"some": "x"}, 'v.some: expected u32, got "x"'),
        (OptionT(OptionT(U32)), {"none": 1}, "v.none: expected null, got 1"),
        (LOOSE, "bogus", 'v: unknown case "bogus" of loose; expected one of num, text, empty'),
        (LOOSE, {"bogus": 1}, 'v: unknown case "bogus" of loose; expected one of num, text, empty'),
        (
            LOOSE,
            {"num": 1, "text": "a"},
            'v: expected loose as {"case": payload} or "case" (cases: num, text, empty), got {"num": 1, "text": "a"}',
        ),
        (LOOSE, 5, 'v: expected loose as {"case": payload} or "case" (cases: num, text, empty), got 5'),
        (LOOSE, "num", "v: case 'num' of loose needs a payload of type u32: write {\"num\": value}"),
        (LOOSE, {"empty": 3}, "v.empty: case 'empty' has no payload; expected null, got 3"),
        (LOOSE, {"num": -1}, "v.num: -1 does not fit in u32 (0..4294967295)"),
        (LOOSE, {"num": None}, "v.num: expected u32, got null"),
        (COLOR, "purple", 'v: unknown case "purple" of color; expected one of red, green, light-blue'),
        (COLOR, 1, "v: expected color (one of its case names), got 1"),
        (COLOR, {"red": None}, 'v: expected color (one of its case names), got {"red": null}'),
        (PERMS, "read", 'v: expected permissions (an array of flag names), got "read"'),
        (PERMS, ["read", "fly"], 'v[1]: unknown flag "fly" of permissions; expected any of read, write, run-as-admin'),
        (PERMS, [1], "v[0]: unknown flag 1 of permissions; expected any of read, write, run-as-admin"),
        (
            ResultT(U32, STRING),
            5,
            'v: expected result<u32, string> as {"ok": value} or {"err": value} (cases: ok, err), got 5',
        ),
        (ResultT(U32, STRING), {"ok": "x"}, 'v.ok: expected u32, got "x"'),
        (ResultT(U32, STRING), {"err": 1}, "v.err: expected string, got 1"),
        (ResultT(U32, STRING), {"maybe": 1}, 'v: unknown case "maybe" of result<u32, string>; expected one of ok, err'),
        (ResultT(U32, STRING), "ok", "v: case 'ok' of result<u32, string> needs a payload of type u32: write {\"ok\": value}"),
        (ResultT(None, STRING), {"ok": 1}, "v.ok: case 'ok' has no payload; expected null, got 1"),
        (ResultT(U32, BOOL), {"err": 1}, "v.err: expected bool, got 1"),
        (ResourceT("own", "counter"), 1, "v: values of type counter cannot be given as JSON"),
        (ResourceT("borrow", "counter"), 1, "v: values of type borrow<counter> cannot be given as JSON"),
        (OpaqueT("stream"), [], "v: values of type stream cannot be given as JSON"),
    ],
)
def test_bad_values_name_the_path_and_the_problem(ty: WitType, value: Any, message: str) -> None:
    """Every kind of bad value is rejected with the path of the bad field and what was expected."""
    assert error_of(value, ty) == message


def test_huge_integer_for_a_float_is_rejected() -> None:
    """An integer too large for a double is reported, not raised as an OverflowError."""
    value = 10**400
    assert error_of(value, F64) == f"v: {describe(value)} does not fit in f64"


@pytest.mark.parametrize(
    ("fn", "params", "message"),
    [
        (MIX, 5, "params: expected an array or an object of parameters, got 5"),
        (MIX, "[1]", 'params: expected an array or an object of parameters, got "[1]"'),
        (MIX, None, "params: no parameters were given (an empty body or null), and the function takes 3 parameters (count, label, note): send them as an array (by position) or an object (by name)"),
        (MIX, [1], "params: expected 3 parameters (count, label, note), got 1"),
        (MIX, [1, "x", None, 4], "params: expected 3 parameters (count, label, note), got 4"),
        (FunctionType((), None), [1], "params: expected 0 parameters (none), got 1"),
        (FunctionType((("a", U8),), None), [], "params: expected 1 parameter (a), got 0"),
        (MIX, {"count": 1, "lable": "x"}, "params.lable: unknown parameter; the function takes count, label, note"),
        (MIX, {"label": "x"}, "params.count: missing parameter of type u8"),
        (MIX, [300, "x", None], "params[0]: 300 does not fit in u8 (0..255)"),
        (MIX, [1, "x", 12], "params[2]: expected option<string>, got 12"),
        (MIX, {"count": 1, "label": "x", "note": 12}, "params.note: expected option<string>, got 12"),
        (LABELLED, {"p": {"label": 12}}, "params.p.label: expected option<string>, got 12"),
        (LABELLED, [{"label": 12}], "params[0].label: expected option<string>, got 12"),
    ],
)
def test_bad_params_name_the_path(fn: FunctionType, params: Any, message: str) -> None:
    """Wrong parameter shapes, arity, names and values are reported with their path."""
    with pytest.raises(InvalidValueError) as info:
        canonical_params(params, fn)
    assert str(info.value) == message


def test_invalid_value_error_is_a_usage_error_with_a_path() -> None:
    """Bad values are usage errors (CLI exit 2, HTTP 400) that carry the path separately."""
    with pytest.raises(InvalidValueError) as info:
        canonical_params([1, "x", 12], MIX)
    assert isinstance(info.value, UsageError)
    assert info.value.path == "params[2]"
    assert info.value.exit_code == 2
    assert info.value.problem == "expected option<string>, got 12"


def test_describe_shortens_long_values() -> None:
    """Error messages quote at most 60 characters of the offending value."""
    text = describe("x" * 100)
    assert len(text) == 60 and text.endswith("...")
