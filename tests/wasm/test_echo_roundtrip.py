"""JSON -> WIT -> guest -> WIT -> JSON round trips through a real component that echoes its argument.

The echo component (tests/components/echo) exports one echo function per WIT
type shape; each property test draws canonical JSON values of the function's
parameter type and checks that the component hands back exactly that value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.wit.types import INT_RANGES
from tests.support.guests import COMPONENTS, GuestInstance
from tests.support.wit_values import json_values

ECHO_WIT = (COMPONENTS / "echo" / "wit" / "echo.wit").read_text()
# Every `echo-*` function of every interface, read from the WIT at collection time.
ECHO_FUNCTIONS = [
    f"test:echo/{iface}.{fn}"
    for iface, body in re.findall(r"^interface ([a-z-]+) \{(.*?)^\}", ECHO_WIT, re.M | re.S)
    for fn in re.findall(r"^\s+(echo-[a-z0-9-]+): func", body, re.M)
]


@pytest.fixture(scope="module")
def echo(echo_guest: LoadedComponent) -> Iterator[GuestInstance]:
    """One instance of the echo component for the module."""
    instance = GuestInstance(echo_guest)
    yield instance
    instance.close()


def test_every_echo_function_is_exported(echo_guest: LoadedComponent) -> None:
    """The echo functions found in the WIT are the component's exported echo functions."""
    exported = {str(f) for f in echo_guest.info.functions() if f.function.startswith("echo-")}
    assert exported == set(ECHO_FUNCTIONS)
    assert len(ECHO_FUNCTIONS) >= 40


@pytest.mark.parametrize("ffqn", ECHO_FUNCTIONS)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_echo_round_trip(echo: GuestInstance, ffqn: str, data: st.DataObject) -> None:
    """A generated value of the function's parameter type comes back from the guest unchanged."""
    fn = echo.functions[Ffqn.parse(ffqn)]
    (_, ty), = fn.params
    assert fn.result == ty
    value = data.draw(json_values(ty), label="value")
    assert echo.call(ffqn, [value]) == value


@pytest.mark.parametrize("name", sorted(INT_RANGES))
def test_integer_bounds_round_trip(echo: GuestInstance, name: str) -> None:
    """The smallest and largest value of every integer width reach the guest and come back."""
    lo, hi = INT_RANGES[name]
    for value in (lo, hi, 0):
        assert echo.call(f"test:echo/prims.echo-{name}", [value]) == value


@pytest.mark.parametrize("width", ["f32", "f64"])
def test_float_specials_round_trip(echo: GuestInstance, width: str) -> None:
    """NaN and both infinities travel as strings; -0.0 and extreme values survive."""
    ffqn = f"test:echo/prims.echo-{width}"
    for word in ("NaN", "Infinity", "-Infinity"):
        assert echo.call(ffqn, [word]) == word
    tiny, big = (1.401298464324817e-45, 3.4028234663852886e38) if width == "f32" else (5e-324, 1.7976931348623157e308)
    for value in (tiny, -big, big):
        assert echo.call(ffqn, [value]) == value
    zero = echo.call(ffqn, [-0.0])
    assert zero == 0.0 and str(zero) == "-0.0"


def test_f32_values_are_rounded_to_single_precision(echo: GuestInstance) -> None:
    """A double given for an f32 arrives rounded to the nearest f32 and is reported as such."""
    assert echo.call("test:echo/prims.echo-f32", [0.1]) == 0.10000000149011612


def test_unicode_text_round_trips(echo: GuestInstance) -> None:
    """Strings and chars outside ASCII, NUL and astral characters included, come back unchanged."""
    for text in ["", "a\u0000b", "é", "日本語", "😀👍🏽", "\U0010ffff", "line\nbreak\ttab"]:
        assert echo.call("test:echo/prims.echo-string", [text]) == text
    for char in ["a", "\u0000", "é", "😀", "\U0010ffff"]:
        assert echo.call("test:echo/prims.echo-char", [char]) == char
    assert echo.call("test:echo/compound.echo-chars", [["😀", "x"]]) == ["😀", "x"]


def test_params_by_name_and_position(echo: GuestInstance) -> None:
    """Several params may be given by position or by name, with an omitted option meaning none."""
    assert echo.call("test:echo/prims.mix", [7, "seven", "n"]) == [7, "seven", "n"]
    assert echo.call("test:echo/prims.mix", {"label": "x", "count": 1}) == [1, "x", None]
    assert echo.call("test:echo/prims.nothing", []) is None
    assert echo.call("test:echo/prims.nothing", {}) is None


def test_kebab_case_records_and_optional_fields(echo: GuestInstance) -> None:
    """Records keep their WIT field names and fill omitted option fields with null."""
    person = {"first-name": "Ada", "age": 36, "nick-names": ["countess"], "home": {"x": 1, "y": -2}}
    assert echo.call("test:echo/compound.echo-person", [person]) == {**person, "last-name": None}


@pytest.mark.parametrize(
    ("ffqn", "value", "received"),
    [
        ("test:echo/choices.case-of-count-or-flag", {"flag": True}, "CountOrFlag_Flag(True)"),
        ("test:echo/choices.case-of-count-or-flag", {"flag": False}, "CountOrFlag_Flag(False)"),
        ("test:echo/choices.case-of-count-or-flag", {"count": 1}, "CountOrFlag_Count(1)"),
        ("test:echo/choices.case-of-result-bool", {"err": True}, "Err(True)"),
        ("test:echo/choices.case-of-result-bool", {"ok": 1}, "Ok(1)"),
        ("test:echo/choices.case-of-maybe-or-text", {"text": "hi"}, "MaybeOrText_Text('hi')"),
        ("test:echo/choices.case-of-maybe-or-text", {"maybe": None}, "MaybeOrText_Maybe(None)"),
        ("test:echo/choices.case-of-maybe-or-text", {"maybe": 4}, "MaybeOrText_Maybe(4)"),
    ],
)
def test_guest_receives_the_case_that_was_sent(echo: GuestInstance, ffqn: str, value: Any, received: str) -> None:
    """The guest sees the very case given in JSON, also where payload classes are related (bool/int, None/str)."""
    assert echo.call(ffqn, [value]) == received


def test_results_as_values_and_as_return_values(echo: GuestInstance) -> None:
    """Results echo both as a function's result and nested in a list, with every payload arrangement."""
    cases = {
        "echo-result": [{"ok": 1}, {"err": "bad"}],
        "echo-result-err-only": [{"ok": None}, {"err": "bad"}],
        "echo-result-ok-only": [{"ok": 1}, {"err": None}],
        "echo-result-empty": [{"ok": None}, {"err": None}],
        "echo-result-same": [{"ok": "a"}, {"err": "a"}],
        "echo-result-bool": [{"ok": 0}, {"ok": 1}, {"err": True}, {"err": False}],
        "echo-result-option": [{"ok": None}, {"ok": "s"}, {"err": None}, {"err": 0}],
    }
    for fn, values in cases.items():
        for value in values:
            assert echo.call(f"test:echo/choices.{fn}", [value]) == value
    nested = [{"ok": -128}, {"err": "light-blue"}]
    assert echo.call("test:echo/choices.echo-results", [nested]) == nested
