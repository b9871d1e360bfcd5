"""The size limit of one value: what it counts, its message, and that it keeps every value within wasmtime's copy budget."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolmen.platform.errors import ValueTooLargeError
from dolmen.platform.wit.limits import (
    DEFAULT_MAX_VALUE_BYTES,
    HOSTCALL_FUEL,
    MAX_LIST_U8,
    SAFE_VALUE_BYTES,
    VAL_BYTES,
    check_value,
    copy_budget_message,
    json_size,
)
from dolmen.platform.wit.types import EnumT, FlagsT, ListT, OptionT, Prim, RecordT, ResultT, TupleT, VariantT, WitType
from tests.support.wit_values import json_values, wit_types


def copy_cost(value: Any, ty: WitType | None, *, in_option: bool = False) -> int:
    """What wasmtime 50 charges to copy a value of `ty` out of a guest (its hostcall fuel).

    Strings cost their UTF-8 bytes (`WasmStr::new`), list elements
    `size_of::<Val>()` each (`load_list`); nothing else costs anything.
    """
    if ty is None or isinstance(ty, (EnumT, FlagsT)):
        return 0
    if isinstance(ty, Prim):
        return len(value.encode()) if ty.name == "string" else 0
    if isinstance(ty, ListT):
        return VAL_BYTES * len(value) + sum(copy_cost(v, ty.element) for v in value)
    if isinstance(ty, TupleT):
        return sum(copy_cost(v, t) for v, t in zip(value, ty.elements))
    if isinstance(ty, RecordT):
        return sum(copy_cost(value[name], fty) for name, fty in ty.fields)
    if isinstance(ty, OptionT):
        if in_option:  # {"some": v} / {"none": null}
            return copy_cost(value["some"], ty.inner, in_option=True) if "some" in value else 0
        return 0 if value is None else copy_cost(value, ty.inner, in_option=True)
    if isinstance(ty, (VariantT, ResultT)):
        if isinstance(value, str):
            return 0
        ((case, payload),) = value.items()
        cases = dict(ty.cases) if isinstance(ty, VariantT) else {"ok": ty.ok, "err": ty.err}
        return copy_cost(payload, cases[case])
    raise TypeError(f"no copy cost for {ty.wit()}")


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[WitType, Any]:
    ty = draw(wit_types())
    return ty, draw(json_values(ty))


@settings(deadline=None, max_examples=200)
@given(typed_values())
def test_a_value_costs_less_than_half_a_list_element_per_byte_of_json(case: tuple[WitType, Any]) -> None:
    """The bound the limit rests on holds for every WIT shape: copy cost <= VAL_BYTES / 2 per byte of JSON."""
    ty, value = case
    assert copy_cost(value, ty) <= VAL_BYTES // 2 * (json_size(value) - 1)


def test_the_worst_value_at_the_default_limit_fits_the_budget() -> None:
    """A list<u8> of zeros (two bytes of JSON per element, the dearest shape) at the default limit still fits."""
    elements = (DEFAULT_MAX_VALUE_BYTES - 1) // 2
    zeros = [0] * elements
    assert json_size(zeros) <= DEFAULT_MAX_VALUE_BYTES
    assert copy_cost(zeros, ListT(Prim("u8"))) <= HOSTCALL_FUEL
    assert DEFAULT_MAX_VALUE_BYTES <= SAFE_VALUE_BYTES
    # The failure of the issue: 3 MB of bytes cannot leave a guest, whatever the limit.
    assert MAX_LIST_U8 < 3_000_000


def test_json_size_counts_compact_utf8_json() -> None:
    """The size is that of compact JSON in UTF-8: no spaces, non-ASCII text as its UTF-8 bytes."""
    assert json_size([1, 2, 3]) == len("[1,2,3]")
    assert json_size({"a": "b"}) == len('{"a":"b"}')
    assert json_size("é€") == 2 + 2 + 3
    assert json_size('"\n') == len(r'"\"\n"')


def test_a_value_one_byte_over_the_limit_is_refused_naming_the_limit_and_the_setting() -> None:
    """Exactly at the limit passes; one byte more raises a non-retryable error saying how to fix it."""
    check_value("x" * 98, 100, "the result")
    with pytest.raises(ValueTooLargeError) as caught:
        check_value("x" * 99, 100, "the result")
    error = caught.value
    assert not error.retryable and error.kind == "value_too_large"
    assert error.message == (
        "the JSON of the result is 101 bytes, over the limit of 100 bytes for one value; pass large data by "
        "reference (e.g. a URL), or raise DOLMEN_MAX_VALUE_BYTES on the gateways and runners"
    )


def test_the_copy_budget_message_names_the_budget_the_limit_and_the_setting() -> None:
    """A value past wasmtime's budget is explained with the numbers a user needs."""
    message = copy_budget_message("the result", 4194304)
    assert message.startswith("the result could not be copied out of the guest")
    for part in ("128 MiB", "48 bytes per list element", "2,796,202 elements", "4194304 bytes", "DOLMEN_MAX_VALUE_BYTES"):
        assert part in message
