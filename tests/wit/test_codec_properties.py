"""Property tests of the codec and the type model over generated WIT types of every shape."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dolmen.platform.wit.codec import canonical, from_wasm, to_wasm
from dolmen.platform.wit.tagging import accepts
from dolmen.platform.wit.types import FunctionType, WitType, type_from_json
from tests.support.wit_values import json_values, wit_types

PROPERTY = settings(deadline=None, max_examples=60)


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[WitType, Any]:
    """A WIT type and a canonical JSON value of it."""
    ty = draw(wit_types())
    return ty, draw(json_values(ty))


@PROPERTY
@given(typed_values())
def test_canonical_json_round_trips_through_wasm_values(case: tuple[WitType, Any]) -> None:
    """JSON -> wasmtime-py value -> JSON gives back the canonical value, for nested types of every shape."""
    ty, value = case
    wasm = to_wasm(value, ty, "v")
    # The value has the shape wasmtime-py lowers (its case test, as patched).
    assert accepts(ty, wasm)
    assert from_wasm(wasm, ty) == value
    # Canonical values are strict JSON (no NaN literals) and read back equal.
    text = json.dumps(canonical(value, ty, "v"), allow_nan=False)
    assert canonical(json.loads(text), ty, "v") == value


@PROPERTY
@given(wit_types())
def test_type_descriptions_round_trip(ty: WitType) -> None:
    """A type's JSON description reads back as an equal type with the same WIT text."""
    back = type_from_json(json.loads(json.dumps(ty.to_json())))
    assert back == ty
    assert back.wit() == ty.wit()


@PROPERTY
@given(st.lists(wit_types(max_leaves=4), max_size=3), st.none() | wit_types(max_leaves=4))
def test_function_type_descriptions_round_trip(params: list[WitType], result: WitType | None) -> None:
    """A function type's JSON description (stored with deployments) reads back equal."""
    fn = FunctionType(tuple((f"p-{i}", t) for i, t in enumerate(params)), result)
    assert FunctionType.from_json(json.loads(json.dumps(fn.to_json()))) == fn
    assert fn.unsupported_reason() is None
