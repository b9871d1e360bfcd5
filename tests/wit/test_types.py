"""Dolmen's WIT type model: WIT text, structural equality, JSON-ability, rendering."""

from __future__ import annotations

from dolmen.platform.wit.render import render_interface
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
    json_convertible,
    named_types,
)

U32, STRING = Prim("u32"), Prim("string")
POINT = RecordT((("x", Prim("s32")), ("y", Prim("s32"))), "point")
SHAPE = VariantT((("at", POINT), ("nowhere", None)), "shape")


def test_wit_text_of_every_type() -> None:
    """Each type prints as WIT writes it; named types print by name."""
    assert ListT(TupleT((U32, STRING))).wit() == "list<tuple<u32, string>>"
    assert OptionT(OptionT(U32)).wit() == "option<option<u32>>"
    assert ResultT(U32, STRING).wit() == "result<u32, string>"
    assert ResultT(None, STRING).wit() == "result<_, string>"
    assert ResultT(U32, None).wit() == "result<u32>"
    assert ResultT(None, None).wit() == "result"
    assert POINT.wit() == "point"
    assert RecordT((("x", U32),)).wit() == "record { x: u32 }"
    assert EnumT(("a", "b"), "e").wit() == "e"
    assert FlagsT(("r",)).wit() == "flags { r }"
    assert ResourceT("own", "counter").wit() == "counter"
    assert ResourceT("borrow", "counter").wit() == "borrow<counter>"
    assert OpaqueT("future").wit() == "future"
    assert FunctionType((("p", POINT),), None).wit() == "func(p: point)"


def test_names_do_not_take_part_in_equality() -> None:
    """The component model types values structurally, so two names for one shape are equal types."""
    assert RecordT(POINT.fields, "point") == RecordT(POINT.fields, "coords")
    assert hash(RecordT(POINT.fields, "point")) == hash(RecordT(POINT.fields, "coords"))


def test_named_types_are_listed_innermost_first() -> None:
    """Named types reachable from a type come innermost first, once each."""
    assert named_types(ListT(OptionT(SHAPE))) == [POINT, SHAPE]
    assert named_types(TupleT((POINT, POINT))) == [POINT]
    assert named_types(U32) == []


def test_resources_and_async_types_have_no_json_form() -> None:
    """Handles and async types make a function uninvocable with a reason naming them."""
    assert json_convertible(ListT(POINT)) is None
    assert json_convertible(OptionT(ResourceT("own", "counter"))) == (
        "it uses the resource handle counter, which cannot be sent as JSON"
    )
    assert json_convertible(ResultT(OpaqueT("stream"), None)) == (
        "it uses the async type stream, which cannot be sent as JSON"
    )
    fn = FunctionType((("c", ResourceT("borrow", "counter")),), U32)
    assert fn.unsupported_reason() == (
        "parameter 'c': it uses the resource handle borrow<counter>, which cannot be sent as JSON"
    )
    assert FunctionType((), ResourceT("own", "counter")).unsupported_reason() == (
        "result: it uses the resource handle counter, which cannot be sent as JSON"
    )


def test_render_interface_defines_named_types_and_resources() -> None:
    """Rendered interfaces define their named types and put resource members in the resource block."""
    counter = ResourceT("own", "counter")
    text = render_interface(
        "things",
        {
            "[constructor]counter": FunctionType((("start", U32),), counter),
            "[method]counter.next": FunctionType((("self", ResourceT("borrow", "counter")),), U32),
            "[static]counter.zero": FunctionType((), counter),
            "locate": FunctionType((("s", SHAPE),), OptionT(POINT)),
        },
        resources=["counter", "idle"],
    )
    assert text == "\n".join(
        [
            "interface things {",
            "  resource counter {",
            "    constructor(start: u32);",
            "    next: func() -> u32;",
            "    zero: static func() -> counter;",
            "  }",
            "  resource idle;",
            "  record point {",
            "    x: s32,",
            "    y: s32,",
            "  }",
            "  variant shape {",
            "    at(point),",
            "    nowhere,",
            "  }",
            "  locate: func(s: shape) -> option<point>;",
            "}",
        ]
    )
