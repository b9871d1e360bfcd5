"""Pure parts of the gateway: text conversion, route templates, tokens, metrics rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.gateway.auth import Authenticator
from dolmen.gateway.convert import from_texts
from dolmen.gateway.metrics import GatewayMetrics
from dolmen.platform.metrics import RunnerMetrics, SchedulerMetrics, merge_snapshots
from dolmen.gateway.openapi import build_openapi
from dolmen.gateway.routes import RouteTable, bind, compile_route, route_result
from dolmen.gateway.settings import GatewaySettings, Token, check_tokens_env, parse_tokens
from dolmen.platform.model import ComponentConfig, FunctionRoute, Revision, RouteSpec
from dolmen.platform.store.outcomes import FAILURE_KINDS
from dolmen.platform.store.records import ExecutionState, Failure, Outcome
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
    assert parse_tokens(["abcdefgh", "ijklmnop:invoke"]) == (Token("abcdefgh", "admin"), Token("ijklmnop", "invoke"))
    with pytest.raises(ConfigError, match="at least 8"):
        parse_tokens(["short"])
    with pytest.raises(ConfigError, match="unknown gateway token scope"):
        parse_tokens(["abcdefgh:root"])
    assert "abcdefgh" not in repr(Token("abcdefgh"))


def test_tokens_that_would_leave_the_api_open_or_guess_a_scope_are_refused(tmp_path: Path) -> None:
    """A blank `--token`, DOLMEN_GATEWAY_TOKENS of commas only, and one token given with two scopes are errors,
    from the gateway's settings and from `platform up`'s check alike; an unset or blank variable is an open API."""
    with pytest.raises(ConfigError, match="an empty gateway token"):
        parse_tokens([" "])
    with pytest.raises(ConfigError, match=r"given twice \(invoke and admin\)"):
        parse_tokens(["k7Qm2xVb9RtL4nPw:invoke", "k7Qm2xVb9RtL4nPw:admin"])
    for text in (",", " , ,"):
        env = {"DOLMEN_GATEWAY_TOKENS": text}
        with pytest.raises(ConfigError, match="names no token, which would leave the API open"):
            check_tokens_env(env)
        with pytest.raises(ConfigError, match="names no token"):
            GatewaySettings.from_env(redis_url="redis://x", data_dir=tmp_path, environ=env)
    with pytest.raises(ConfigError, match="DOLMEN_GATEWAY_TOKENS: a gateway token is given twice"):
        check_tokens_env({"DOLMEN_GATEWAY_TOKENS": "k7Qm2xVb9RtL4nPw:invoke,k7Qm2xVb9RtL4nPw:admin"})
    for text in ("", "  "):
        assert GatewaySettings.from_env(redis_url="redis://x", data_dir=tmp_path, environ={"DOLMEN_GATEWAY_TOKENS": text}).tokens == ()
        check_tokens_env({"DOLMEN_GATEWAY_TOKENS": text})


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


def test_process_snapshots_merge_into_families_labelled_by_process() -> None:
    """Two runners' snapshots become one family per metric, each sample labelled with its process; bad ones are left out."""
    first, second = RunnerMetrics(), RunnerMetrics()
    first.attempts.labels("activity", "returned").observe(0.002)
    first.attempts.labels("activity", "returned").observe(0.2)
    second.takeovers.labels("workflow").inc()
    families = {
        f.name: f
        for f in merge_snapshots([("runner:a:1", first.snapshot()), ("runner:b:2", second.snapshot()), ("runner:c:3", "not json")])
    }
    assert families["dolmen_attempt_duration_seconds"].type == "histogram"
    counts = {
        s.labels["process"]: s.value
        for s in families["dolmen_attempt_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels.get("kind") == "activity"
    }
    assert counts == {"runner:a:1": 2.0}
    buckets = [
        s for s in families["dolmen_attempt_duration_seconds"].samples if s.name.endswith("_bucket") and s.labels["le"] == "0.005"
    ]
    assert [(b.labels["process"], b.value) for b in buckets] == [("runner:a:1", 1.0)]
    takeovers = [s for s in families["dolmen_lock_takeovers"].samples if s.name == "dolmen_lock_takeovers_total"]
    # Each runner lists both kinds from the start, at 0 until a takeover.
    assert sorted((t.labels["process"], t.labels["kind"], t.value) for t in takeovers) == [
        ("runner:a:1", "activity", 0.0), ("runner:a:1", "workflow", 0.0),
        ("runner:b:2", "activity", 0.0), ("runner:b:2", "workflow", 1.0),
    ]  # fmt: skip
    assert not any(s.name.endswith("_created") for f in families.values() for s in f.samples)


def test_gateway_exposition_has_each_family_once_with_escaped_labels() -> None:
    """The store's and processes' families come first, then the gateway's own; label values are escaped."""
    metrics = GatewayMetrics()
    metrics.requests.labels('in"voke', "2xx").observe(0.05)
    scheduler = SchedulerMetrics()
    scheduler.timers_fired.inc(3)
    text = metrics.render(merge_snapshots([("scheduler:h:9", scheduler.snapshot())])).decode()
    assert 'dolmen_timers_fired_total{process="scheduler:h:9"} 3.0' in text
    assert 'dolmen_gateway_request_duration_seconds_bucket{code="2xx",handler="in\\"voke",le="0.1"} 1.0' in text
    assert text.count("# TYPE dolmen_gateway_request_duration_seconds histogram") == 1
    assert text.count("# TYPE dolmen_timers_fired_total counter") == 1

def test_the_openapi_route_operation_documents_every_status_a_failed_route_answers() -> None:
    """Each failure kind's status on a route (504 timeout, 409 cancelled, 500 the others) is in its OpenAPI answers."""
    functions = _function(("n", Prim("u32")))
    component = next(iter(functions.values())).component
    revision = Revision(1, "d", 0, (component,), routes=(RouteSpec("POST", "/f/{n}", "a:b/c@1.0.0.f"),))
    responses = build_openapi(revision, RouteTable(revision), auth=False)["paths"]["/f/{n}"]["post"]["responses"]
    answered: dict[str, int] = {}
    for kind in FAILURE_KINDS:
        state = ExecutionState(
            "E_01J00000000000000000000000", "a:b/c@1.0.0.f", "activity", "sha256:0", "finished", 1, 1, 0, 0, [1],
            outcome=Outcome(failure=Failure(kind, "it failed")),
        )  # fmt: skip
        answered[kind] = route_result(state).status_code
        assert str(answered[kind]) in responses, f"{kind} answers {answered[kind]}, which the route's operation omits"
    assert (answered["timeout"], answered["cancelled"], answered["trap"]) == (504, 409, 500)
    assert {"405", "409"} <= set(responses)  # another method on the path; an Idempotency-Key reused
