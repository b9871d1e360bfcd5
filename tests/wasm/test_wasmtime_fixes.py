"""The patch of wasmtime-py's untagged variant lowering, and the codec's agreement with wasmtime-py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from wasmtime.component import (
    ComponentInstanceType,
    FuncType,
    ListType,
    OptionType,
    RecordType,
    ResultType,
    TupleType,
    ValType,
    VariantType,
)
from wasmtime.component._types import VariantLikeType  # pyright: ignore[reportPrivateImportUsage]

from dolmen.platform.wasm import _wasmtime_fixes
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.wit.codec import _is_tagged  # pyright: ignore[reportPrivateUsage]
from dolmen.platform.wit.types import ListT, OptionT, RecordT, ResultT, TupleT, VariantT, WitType
from tests.support.guests import GuestInstance


@pytest.fixture
def echo(echo_guest: LoadedComponent) -> Iterator[GuestInstance]:
    """A fresh instance of the echo component."""
    instance = GuestInstance(echo_guest)
    yield instance
    instance.close()


def test_patch_is_installed_by_the_host_modules() -> None:
    """Importing the loader, guest or activity host installs the patch; applying again is harmless."""
    assert _wasmtime_fixes.applied()
    _wasmtime_fixes.apply()
    assert _wasmtime_fixes.applied()


def test_unpatched_wasmtime_sends_a_bool_as_the_integer_case(
    echo: GuestInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the patch, err(true) of result<u32, bool> reaches the guest as ok(1): the bug being fixed."""
    monkeypatch.setattr(VariantLikeType, "_lower", _wasmtime_fixes.original_lower())
    assert echo.call("test:echo/choices.case-of-result-bool", [{"err": True}]) == "Ok(1)"
    assert echo.call("test:echo/choices.case-of-count-or-flag", [{"flag": True}]) == "CountOrFlag_Count(1)"


def test_unpatched_wasmtime_rejects_a_string_next_to_an_option_case(
    echo: GuestInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the patch, `text` of variant { maybe(option<u32>), text(string) } fails to lower."""
    monkeypatch.setattr(VariantLikeType, "_lower", _wasmtime_fixes.original_lower())
    with pytest.raises(ValueError, match="value not valid for this variant"):
        echo.call("test:echo/choices.case-of-maybe-or-text", [{"text": "hi"}])


def test_patched_wasmtime_sends_the_right_cases(echo: GuestInstance) -> None:
    """With the patch the guest receives err(true), flag(true) and text("hi") as sent."""
    assert echo.call("test:echo/choices.case-of-result-bool", [{"err": True}]) == "Err(True)"
    assert echo.call("test:echo/choices.case-of-count-or-flag", [{"flag": True}]) == "CountOrFlag_Flag(True)"
    assert echo.call("test:echo/choices.case-of-maybe-or-text", [{"text": "hi"}]) == "MaybeOrText_Text('hi')"


def _variant_likes(vt: ValType, wt: WitType) -> Iterator[tuple[VariantLikeType, WitType]]:
    """Every variant-like wasmtime type in `vt`, paired with the codec's type at the same place."""
    if isinstance(vt, VariantLikeType):
        yield vt, wt
    if isinstance(vt, ListType) and isinstance(wt, ListT):
        yield from _variant_likes(vt.element, wt.element)
    elif isinstance(vt, OptionType) and isinstance(wt, OptionT):
        yield from _variant_likes(vt.payload, wt.inner)
    elif isinstance(vt, TupleType) and isinstance(wt, TupleT):
        for v, w in zip(vt.elements, wt.elements):
            yield from _variant_likes(v, w)
    elif isinstance(vt, RecordType) and isinstance(wt, RecordT):
        for (_, v), (_, w) in zip(vt.fields, wt.fields):
            yield from _variant_likes(v, w)
    elif isinstance(vt, VariantType) and isinstance(wt, VariantT):
        for (_, v), (_, w) in zip(vt.cases, wt.cases):
            if v is not None and w is not None:
                yield from _variant_likes(v, w)
    elif isinstance(vt, ResultType) and isinstance(wt, ResultT):
        for v, w in ((vt.ok, wt.ok), (vt.err, wt.err)):
            if v is not None and w is not None:
                yield from _variant_likes(v, w)


def test_codec_tagging_rule_agrees_with_wasmtime_py(echo_guest: LoadedComponent) -> None:
    """For every variant, option and result type in the echo component, the codec's tagged/untagged choice is wasmtime-py's."""
    engine, component = echo_guest.engine, echo_guest.component
    checked = 0
    for name, ext in component.type.exports(engine).items():
        if not isinstance(ext.ty, ComponentInstanceType) or not name.startswith("test:echo/"):
            continue
        iface = next(i for i in echo_guest.info.exports if i.name == name)
        for fname, item in ext.ty.exports(engine).items():
            if not isinstance(item.ty, FuncType):
                continue
            fn = iface.functions[fname]
            pairs = list(zip((t for _, t in item.ty.params), (t for _, t in fn.params)))
            if item.ty.result is not None and fn.result is not None:
                pairs.append((item.ty.result, fn.result))
            for vt, wt in pairs:
                for wasmtime_type, codec_type in _variant_likes(vt, wt):
                    assert _is_tagged(codec_type) is wasmtime_type._tagged(), codec_type.wit()  # pyright: ignore[reportPrivateUsage]
                    checked += 1
    assert checked > 50
