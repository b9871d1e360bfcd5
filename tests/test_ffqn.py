"""Fully qualified function names, interface names and WIT's semver compatibility rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dolmen.platform.errors import InvalidNameError, UsageError
from dolmen.platform.ffqn import Ffqn, InterfaceName, is_semver, semver_compatible
from dolmen.platform.model import similar_functions

WORD = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
IDENT = st.lists(WORD, min_size=1, max_size=3).map("-".join)
VERSION = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)).map(lambda v: "%d.%d.%d" % v),
    st.sampled_from(["1.0.0-rc.1", "2.1.3+build.7", "0.1.0-alpha-2+x.y"]),
)


def test_parse_versioned_ffqn() -> None:
    """A versioned name parses into namespace, package, interface, version and function."""
    f = Ffqn.parse("demo:shop/orders@1.2.0.place-order")
    assert f.interface == InterfaceName("demo", "shop", "orders", "1.2.0")
    assert f.function == "place-order"
    assert f.interface.package_name == "demo:shop"
    assert str(f) == "demo:shop/orders@1.2.0.place-order"


def test_parse_unversioned_ffqn() -> None:
    """The version is optional in the grammar."""
    f = Ffqn.parse("test:echo/prims.echo-u8")
    assert f.interface.version is None
    assert str(f) == "test:echo/prims.echo-u8"


def test_prerelease_and_build_versions_parse() -> None:
    """Versions with pre-release and build parts (which contain dots) still split off the function."""
    f = Ffqn.parse("demo:shop/orders@1.0.0-rc.1+build.5.place")
    assert f.interface.version == "1.0.0-rc.1+build.5"
    assert f.function == "place"


def test_version_is_part_of_identity() -> None:
    """The same function at two versions, or unversioned, are three different ffqns."""
    names = {
        Ffqn.parse("demo:shop/orders@1.0.0.place"),
        Ffqn.parse("demo:shop/orders@2.0.0.place"),
        Ffqn.parse("demo:shop/orders.place"),
    }
    assert len(names) == 3
    assert Ffqn.parse("demo:shop/orders@1.0.0.place") == Ffqn.of("demo:shop/orders@1.0.0", "place")


def test_ffqns_sort_and_hash() -> None:
    """Ffqns are frozen, hashable and ordered, so they can key dicts and be listed stably."""
    a, b = Ffqn.parse("a:b/c.x"), Ffqn.parse("a:b/c.y")
    assert sorted([b, a]) == [a, b]
    with pytest.raises(AttributeError):
        a.function = "z"  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "place",
        "orders.place",
        "demo:shop.place",
        "demo:shop/orders",
        "demo:shop/orders@1.0.0",
        "demo:shop/orders@1.0.place",
        "demo:shop/orders@v1.0.0.place",
        "demo:shop/orders@01.0.0.place",
        "Demo:shop/orders.place",
        "demo:shop/orders.place_order",
        "demo:shop/orders.Place-order",
        "demo:shop/orders.1place",
        "demo:shop/orders.place-",
        "demo:shop/orders.",
        "demo:/orders.place",
        " demo:shop/orders.place",
        "demo:shop/orders.place ",
        "demo:shop/orders.place\n",  # `$` would match before a final newline
        "demo:shop/orders@1.0.0\n.place",
    ],
)
def test_malformed_names_are_rejected(text: str) -> None:
    """Malformed names raise a usage error that quotes the name and shows an example."""
    with pytest.raises(InvalidNameError) as info:
        Ffqn.parse(text)
    assert isinstance(info.value, UsageError)
    message = str(info.value)
    if text:
        assert f"'{text}'" in message
    assert "demo:shop/orders@1.0.0" in message or "kebab-case" in message


def test_malformed_name_messages() -> None:
    """The error says what is expected and, for a bad function part, what a valid one looks like."""
    with pytest.raises(InvalidNameError) as info:
        Ffqn.parse("orders.place")
    assert str(info.value) == (
        "'orders.place' is not a function name; expected 'namespace:package/interface@version.function', "
        "for example 'demo:shop/orders@1.0.0.place'"
    )
    with pytest.raises(InvalidNameError) as info:
        Ffqn.parse("demo:shop/orders.place_order")
    assert str(info.value) == (
        "'demo:shop/orders.place_order': 'place_order' is not a valid WIT function name "
        "(kebab-case words such as 'place-order')"
    )


@pytest.mark.parametrize("value", [None, 12, b"a:b/c.d"])
def test_non_strings_are_rejected(value: Any) -> None:
    """Anything but a string is rejected with the same error type."""
    with pytest.raises(InvalidNameError):
        Ffqn.parse(value)


def test_interface_names() -> None:
    """Interface names parse, print, and `try_parse` returns None for plain export names."""
    assert InterfaceName.parse("wasi:io/poll@0.2.9") == InterfaceName("wasi", "io", "poll", "0.2.9")
    assert str(InterfaceName("test", "echo", "prims")) == "test:echo/prims"
    assert InterfaceName.try_parse("exports") is None
    assert InterfaceName.try_parse("run") is None
    with pytest.raises(InvalidNameError) as info:
        InterfaceName.parse("wasi:io")
    assert "'wasi:io' is not a WIT interface name" in str(info.value)


@settings(deadline=None, max_examples=100)
@given(IDENT, IDENT, IDENT, VERSION, IDENT)
def test_printed_names_parse_back(ns: str, pkg: str, iface: str, version: str | None, fn: str) -> None:
    """Printing an ffqn and parsing it gives the same ffqn, with or without a version."""
    f = Ffqn(InterfaceName(ns, pkg, iface, version), fn)
    assert Ffqn.parse(str(f)) == f


@pytest.mark.parametrize(
    ("provided", "required", "ok"),
    [
        (None, None, True),
        ("1.0.0", None, False),
        (None, "1.0.0", False),
        ("1.0.0", "1.0.0", True),
        ("1.2.0", "1.0.0", True),
        ("1.0.5", "1.0.2", True),
        ("1.0.0", "1.2.0", False),
        ("2.0.0", "1.0.0", False),
        ("1.9.9", "2.0.0", False),
        ("0.2.9", "0.2.0", True),
        ("0.2.0", "0.2.9", False),
        ("0.3.0", "0.2.0", False),
        ("0.0.1", "0.0.1", True),
        ("0.0.2", "0.0.1", False),
        ("1.0.0-rc.1", "1.0.0-rc.1", True),
        ("1.0.0", "1.0.0-rc.1", False),
        ("1.1.0-rc.1", "1.0.0", False),
        ("1.0.0+build-7", "1.0.0", True),
        ("1.2.0", "1.0.0+build-7", True),
        ("1.0", "1.0", True),
        ("1.1", "1.0", False),
    ],
)
def test_semver_compatibility(provided: str | None, required: str | None, ok: bool) -> None:
    """An export satisfies an import by WIT/wasmtime semver rules; versions are never ignored."""
    assert semver_compatible(provided, required) is ok


def test_is_semver() -> None:
    """Only full major.minor.patch versions (with optional pre-release/build) are semver."""
    assert is_semver("1.2.3") and is_semver("1.2.3-rc.1+b.2")
    assert not is_semver("1.2") and not is_semver("v1.2.3") and not is_semver("01.2.3")


def test_similar_functions_offer_the_closest_names_first() -> None:
    """"Did you mean": the same function in another version or interface, then a typo of it in an interface of
    that name; never every function of the interface, and nothing for a name unlike any."""
    known = [
        "t:act/basic@1.2.0.double", "t:act/basic@1.2.0.maybe", "t:act/basic@1.2.0.serial",
        "t:act/basic@2.0.0.double", "t:other/calc@1.0.0.double", "t:act/basic@1.2.0.triple",
    ]  # fmt: skip
    assert similar_functions("t:act/basic@1.0.0.double", known) == [
        "t:act/basic@1.2.0.double", "t:act/basic@2.0.0.double", "t:other/calc@1.0.0.double",
    ]  # fmt: skip
    assert similar_functions("t:act/basic@1.2.0.doubel", known) == ["t:act/basic@1.2.0.double", "t:act/basic@2.0.0.double"]
    assert similar_functions("t:act/basic@1.2.0.tripple", known) == ["t:act/basic@1.2.0.triple"]
    assert similar_functions("t:act/basci@1.2.0.doubel", known)[:1] == ["t:act/basic@1.2.0.double"]
    assert similar_functions("t:act/basic@1.2.0.compute", known) == []
    assert similar_functions("not a name", known) == []
    assert len(similar_functions("t:act/basic@1.2.0.double", [f"t:i{n}/basic@1.0.0.double" for n in range(9)])) == 5
