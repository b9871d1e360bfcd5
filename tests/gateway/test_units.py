"""Pure parts of the gateway: text conversion, route templates, tokens, metrics rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.gateway.auth import Authenticator
from dolmen.gateway.convert import from_texts
from dolmen.gateway.metrics import Histogram
from dolmen.gateway.routes import bind, compile_route
from dolmen.gateway.settings import GatewaySettings, Token, parse_tokens
from dolmen.platform.deploy.model import ComponentConfig, FunctionRoute, RouteSpec
from dolmen.platform.errors import ConfigError, InvalidValueError
from dolmen.platform.wit.types import EnumT, FlagsT, FunctionType, ListT, OptionT, Prim, RecordT, VariantT, WitType


@pytest.mark.parametrize(
    ("texts", "ty", "expected"),
    [
        (["42"], Prim("u32"), 42),
        (["-7"], Prim("s8"), -7),
        (["true"], Prim("bool"), True),
        (["false"], Prim("bool"), False),
        (["1.5"], Prim("f64"), 1.5),
        (["NaN"], Prim("f32"), "NaN"),
        (["hi there"], Prim("string"), "hi there"),
        (["x"], Prim("char"), "x"),
        (["5"], OptionT(Prim("u8")), 5),
        (["a", "b"], ListT(Prim("string")), ["a", "b"]),
        (["1", "2"], ListT(Prim("u16")), [1, 2]),
        (["[1, 2]"], ListT(Prim("u16")), [1, 2]),
        (["red"], EnumT(("red", "blue"), "c"), "red"),
        (["a", "b"], FlagsT(("a", "b"), "f"), ["a", "b"]),
        (["off"], VariantT((("off", None), ("on", Prim("u8"))), "v"), "off"),
        (['{"on": 3}'], VariantT((("off", None), ("on", Prim("u8"))), "v"), {"on": 3}),
        (['{"a": 1}'], RecordT((("a", Prim("u8")),), "r"), {"a": 1}),
        (['{"some": 1}'], OptionT(OptionT(Prim("u8"))), {"some": 1}),
    ],
)
def test_text_converts_by_wit_type(texts: list[str], ty: WitType, expected: object) -> None:
    """Path and query text becomes the JSON form of the parameter's type."""
    assert from_texts(texts, ty, "params.p", "query string") == expected


@pytest.mark.parametrize(
    ("texts", "ty", "message"),
    [
        (["1.0"], Prim("u32"), "expected an integer (u32) in the query string"),
        (["yes"], Prim("bool"), "expected true or false"),
        (["one"], Prim("f64"), "expected a number (f64)"),
        (["1", "2"], Prim("u8"), "given 2 times"),
        (["{bad"], RecordT((("a", Prim("u8")),), "r"), "is written as JSON"),
        (["9" * 100], Prim("u64"), "expected an integer"),
    ],
)
def test_bad_text_names_the_param_and_the_expected_form(texts: list[str], ty: WitType, message: str) -> None:
    """Text that does not convert raises an InvalidValueError with the param's path."""
    with pytest.raises(InvalidValueError) as info:
        from_texts(texts, ty, "params.p", "query string")
    assert info.value.path == "params.p"
    assert message in info.value.message


def _function(*params: tuple[str, WitType]) -> dict[str, FunctionRoute]:
    sig = FunctionType(tuple(params), None)
    component = ComponentConfig("c", "activity", "sha256:0", "", {"a:b/c@1.0.0.f": sig})
    return {"a:b/c@1.0.0.f": FunctionRoute("a:b/c@1.0.0.f", component, sig)}


def test_route_templates_match_segments_and_kebab_names() -> None:
    """`{order_id}` binds the WIT param `order-id`; a placeholder matches one segment only."""
    functions = _function(("order-id", Prim("u32")), ("file", Prim("string")))
    route = compile_route(RouteSpec("GET", "/orders/{order_id}/files/{file}.json", "a:b/c@1.0.0.f"), functions)
    assert route.match("/orders/12/files/report.json".split("/")) == {"order-id": "12", "file": "report"}
    assert route.match("/orders/12/x/files/report.json".split("/")) is None
    assert route.match("/orders/12/files/report.txt".split("/")) is None
    # Segments as decoded one by one: an encoded '/' stays inside its parameter.
    assert route.match(["", "orders", "12", "files", "a/b.json"]) == {"order-id": "12", "file": "a/b"}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (RouteSpec("GET", "/x/{nope}", "a:b/c@1.0.0.f"), "names no parameter"),
        (RouteSpec("GET", "/x/{n}/{n}", "a:b/c@1.0.0.f"), "appears twice"),
        (RouteSpec("GET", "x", "a:b/c@1.0.0.f"), "must start with '/'"),
        (RouteSpec("TRACE", "/x", "a:b/c@1.0.0.f"), "is not one of"),
        (RouteSpec("GET", "/x", "a:b/c@1.0.0.g"), "not deployed"),
    ],
)
def test_bad_route_templates_are_refused_with_the_reason(spec: RouteSpec, problem: str) -> None:
    """compile_route explains why a route cannot be served."""
    with pytest.raises(ValueError, match=problem):
        compile_route(spec, _function(("n", Prim("u32"))))


def test_bind_merges_path_query_and_body_by_name() -> None:
    """Each source fills the params it names; a param from two sources is refused."""
    fn = FunctionType((("id", Prim("u32")), ("verbose", Prim("bool")), ("note", Prim("string"))), None)
    assert bind(fn, {"id": "3"}, [("verbose", "true")], {"note": "n"}) == {"id": 3, "verbose": True, "note": "n"}
    with pytest.raises(InvalidValueError, match="given both in the path and in the body"):
        bind(fn, {"id": "3"}, [], {"id": 4})


def test_tokens_parse_with_scopes_and_refuse_bad_ones() -> None:
    """`TOKEN[:SCOPE]` entries parse; short tokens and unknown scopes are config errors."""
    assert parse_tokens(["abcdefgh", "ijklmnop:invoke", " "]) == (Token("abcdefgh", "admin"), Token("ijklmnop", "invoke"))
    with pytest.raises(ConfigError, match="at least 8"):
        parse_tokens(["short"])
    with pytest.raises(ConfigError, match="unknown gateway token scope"):
        parse_tokens(["abcdefgh:root"])
    assert "abcdefgh" not in repr(Token("abcdefgh"))


def test_settings_read_tokens_and_origins_from_the_environment(tmp_path: Path) -> None:
    """DOLMEN_GATEWAY_TOKENS and DOLMEN_GATEWAY_CORS_ORIGINS add to the explicit values."""
    env = {"DOLMEN_GATEWAY_TOKENS": "envtoken1:invoke, envtoken2", "DOLMEN_GATEWAY_CORS_ORIGINS": "https://a.example"}
    settings = GatewaySettings.from_env(redis_url="redis://x", data_dir=tmp_path, tokens=["clitoken"], environ=env)
    assert [t.scope for t in settings.tokens] == ["admin", "invoke", "admin"]
    assert settings.cors_origins == ("https://a.example",)


def test_an_admin_token_satisfies_invoke_and_the_best_scope_wins() -> None:
    """Scopes are ordered: admin can invoke; a secret listed twice gets its higher scope."""
    auth = Authenticator([Token("samesecret", "invoke"), Token("samesecret", "admin")])
    assert auth.scope_of("samesecret") == "admin"
    assert auth.scope_of("other") is None


def test_histogram_renders_cumulative_prometheus_buckets() -> None:
    """Buckets are cumulative, +Inf equals the count, and labels are escaped."""
    histogram = Histogram("h", "help", ("handler",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 0.5, 5.0):
        histogram.observe(value, 'in"voke')
    lines = histogram.render()
    assert 'h_bucket{handler="in\\"voke",le="0.1"} 1' in lines
    assert 'h_bucket{handler="in\\"voke",le="1.0"} 3' in lines
    assert 'h_bucket{handler="in\\"voke",le="+Inf"} 4' in lines
    assert 'h_count{handler="in\\"voke"} 4' in lines
