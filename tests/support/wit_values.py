"""Hypothesis strategies for WIT types and for canonical JSON values of a WIT type.

`json_values(ty)` draws values in the codec's canonical JSON form (what
`from_wasm` produces), so a round trip through the codec or a component that
echoes its argument must give back exactly the value drawn.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from dolmen.platform.wit.types import (
    INT_RANGES,
    PRIMITIVES,
    EnumT,
    FlagsT,
    ListT,
    OptionT,
    Prim,
    RecordT,
    ResultT,
    TupleT,
    VariantT,
    WitType,
)

_FLOAT_WORDS = st.sampled_from(["NaN", "Infinity", "-Infinity"])
# Unicode scalar values: every code point except the surrogates.
SCALARS = st.characters(exclude_categories=("Cs",))


def json_values(ty: WitType, *, in_option: bool = False) -> st.SearchStrategy[Any]:
    """Canonical JSON values of type `ty` (`in_option`: the payload of an option)."""
    if isinstance(ty, Prim):
        return _prim(ty)
    if isinstance(ty, ListT):
        return st.lists(json_values(ty.element), max_size=4)
    if isinstance(ty, TupleT):
        return st.tuples(*(json_values(e) for e in ty.elements)).map(list)
    if isinstance(ty, OptionT):
        inner = json_values(ty.inner, in_option=True)
        if in_option:
            return st.one_of(st.just({"none": None}), inner.map(lambda v: {"some": v}))
        return st.one_of(st.none(), inner)
    if isinstance(ty, RecordT):
        return st.fixed_dictionaries({name: json_values(fty) for name, fty in ty.fields})
    if isinstance(ty, VariantT):
        return st.one_of(*(_case(name, cty) for name, cty in ty.cases))
    if isinstance(ty, ResultT):
        return st.one_of(_case("ok", ty.ok, bare=False), _case("err", ty.err, bare=False))
    if isinstance(ty, EnumT):
        return st.sampled_from(ty.cases)
    if isinstance(ty, FlagsT):
        flags = ty.flags
        return st.sets(st.sampled_from(flags)).map(lambda chosen: [f for f in flags if f in chosen])
    raise TypeError(f"no JSON values for {ty.wit()}")


def _case(name: str, ty: WitType | None, *, bare: bool = True) -> st.SearchStrategy[Any]:
    if ty is None:
        return st.just(name) if bare else st.just({name: None})
    return json_values(ty).map(lambda v: {name: v})


def _prim(ty: Prim) -> st.SearchStrategy[Any]:
    name = ty.name
    if name == "bool":
        return st.booleans()
    if name in INT_RANGES:
        lo, hi = INT_RANGES[name]
        return st.one_of(st.sampled_from([lo, hi, 0]), st.integers(lo, hi))
    if name == "f32":
        return st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False), _FLOAT_WORDS)
    if name == "f64":
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), _FLOAT_WORDS)
    if name == "char":
        return SCALARS
    return st.text(SCALARS, max_size=12)


def wit_types(max_leaves: int = 8) -> st.SearchStrategy[WitType]:
    """WIT types of every shape, nested: lists, options, tuples, results, records, variants."""
    leaves: st.SearchStrategy[WitType] = st.one_of(
        st.sampled_from([Prim(p) for p in PRIMITIVES]),
        st.integers(1, 4).map(lambda n: EnumT(tuple(f"case-{i}" for i in range(n)), "an-enum")),
        st.integers(1, 4).map(lambda n: FlagsT(tuple(f"flag-{i}" for i in range(n)), "some-flags")),
    )

    def extend(inner: st.SearchStrategy[WitType]) -> st.SearchStrategy[WitType]:
        maybe = st.one_of(st.none(), inner)
        return st.one_of(
            inner.map(ListT),
            inner.map(OptionT),
            st.lists(inner, min_size=1, max_size=3).map(lambda ts: TupleT(tuple(ts))),
            st.tuples(maybe, maybe).map(lambda p: ResultT(p[0], p[1])),
            st.lists(inner, min_size=1, max_size=3).map(
                lambda ts: RecordT(tuple((f"field-{i}", t) for i, t in enumerate(ts)), "a-record")
            ),
            st.lists(maybe, min_size=1, max_size=4).map(
                lambda ts: VariantT(tuple((f"case-{i}", t) for i, t in enumerate(ts)), "a-variant")
            ),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves)
