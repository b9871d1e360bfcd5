"""Deployment routes: path, query and body binding, waiting for the result, live route changes."""

from __future__ import annotations

import httpx

from dolmen.platform.model import RouteSpec
from tests.gateway.helpers import ACT, ROUTES, Platform
from tests.gateway.test_errors import assert_error
from tests.support.polling import wait_for


def test_path_param_binds_and_converts_to_the_wit_type(http: httpx.Client) -> None:
    """POST /double/{x}: the path text becomes a u64 and the answer is the return value."""
    response = http.post("/double/21")
    assert response.status_code == 200
    assert response.json() == 42
    execution_id = response.headers["dolmen-execution-id"]
    assert response.headers["location"] == f"/v1/executions/{execution_id}"
    assert http.get(f"/v1/executions/{execution_id}").json()["params"] == [21]


def test_query_params_bind_by_name(http: httpx.Client) -> None:
    """GET /slow?ms=5&tag=hello binds both params from the query string."""
    assert http.get("/slow", params={"ms": "5", "tag": "hello"}).json() == "hello"


def test_path_and_body_fields_bind_together(http: httpx.Client) -> None:
    """POST /slow/{tag} with a JSON body {"ms": 5} binds one param from each."""
    assert http.post("/slow/from-path", json={"ms": 5}).json() == "from-path"


def test_bool_path_param_and_a_result_value(http: httpx.Client) -> None:
    """GET /maybe/{fail}: 'true'/'false' become bools; the answer is the result<u32, string> value."""
    assert http.get("/maybe/false").json() == {"ok": 7}
    assert http.get("/maybe/true").json() == {"err": "asked to fail"}


def test_option_result_and_workflow_routes(http: httpx.Client) -> None:
    """A workflow route answers with its result; an option result of none is null."""
    assert http.post("/serial", json={"n": 4}).json() == 20
    assert http.get("/env/NOT_GRANTED_TO_THE_COMPONENT").json() is None


def test_text_that_does_not_convert_is_400_naming_the_param(http: httpx.Client) -> None:
    """A path or query value that is not of the param's type answers 400 with its path."""
    message = assert_error(http.post("/double/twelve"), 400, "invalid_value", "params.x")
    assert "integer" in message and "path" in message
    assert_error(http.post("/double/-1"), 400, "invalid_value", "params.x")
    assert_error(http.get("/maybe/yes"), 400, "invalid_value", "params.fail")
    assert_error(http.get("/slow", params={"ms": "1.5", "tag": "t"}), 400, "invalid_value", "params.ms")


def test_missing_unknown_and_duplicate_params_are_400(http: httpx.Client) -> None:
    """A missing param, an unknown query param and a param given twice each answer 400."""
    assert_error(http.get("/slow", params={"ms": "5"}), 400, "invalid_value", "params.tag")
    message = assert_error(http.get("/slow", params={"ms": "5", "tag": "t", "color": "red"}), 400, "invalid_value", "params.color")
    assert "unknown parameter" in message
    message = assert_error(http.post("/slow/a", json={"ms": 5, "tag": "b"}), 400, "invalid_value", "params.tag")
    assert "path" in message and "body" in message
    assert_error(http.get("/slow", params=[("ms", "5"), ("ms", "6"), ("tag", "t")]), 400, "invalid_value", "params.ms")
    assert_error(http.post("/slow/a", json=[5]), 400, "bad_request", "body")


def test_a_json_null_body_is_refused_and_no_body_is_none(http: httpx.Client) -> None:
    """A route's body is an object of params or nothing: `null` is a 400 saying so, an empty body binds nothing."""
    message = assert_error(http.post("/double/21", content=b"null", headers={"content-type": "application/json"}), 400, "bad_request", "body")
    assert message == (
        "the body is JSON null, not an object; send an object whose fields are parameters "
        "(those the path and query do not give), or no body"
    )
    assert http.post("/double/21", content=b"").json() == 42
    assert http.post("/slow/from-path", json={"ms": 5}).json() == "from-path"


def test_a_route_answers_202_when_the_result_takes_longer_than_the_wait(http: httpx.Client) -> None:
    """`Prefer: wait=0.2` on a slow workflow answers 202 with the execution id; the result comes later."""
    response = http.get("/sleepy/2000", headers={"Prefer": "wait=0.2"})
    assert response.status_code == 202
    execution_id = response.json()["execution_id"]
    assert response.headers["location"] == f"/v1/executions/{execution_id}"
    assert http.get(f"/v1/executions/{execution_id}/result", params={"wait": 30}).json()["result"] >= 2000
    assert http.get("/sleepy/10", headers={"Prefer": "respond-async"}).status_code == 202


def test_a_failed_execution_answers_an_error_naming_the_failure(http: httpx.Client) -> None:
    """A route whose activity keeps trapping answers 500 with the failure kind and the execution id."""
    response = http.get("/crash", params={"message": "kaboom"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "trap"
    assert error["execution_id"] == response.headers["dolmen-execution-id"]


def test_routes_follow_the_active_revision_without_a_restart(http: httpx.Client, platform: Platform) -> None:
    """Activating a revision with other routes changes what the running gateway serves."""
    original = platform.revision.number
    added = RouteSpec("GET", "/twice/{x}", f"{ACT}.double")
    try:
        platform.put_routes((*ROUTES, added))
        wait_for(lambda: http.get("/twice/5").status_code == 200, timeout=10, what="the new route")
        assert http.get("/twice/5").json() == 10
    finally:
        platform.activate(original)
    wait_for(lambda: http.get("/twice/5").status_code == 404, timeout=10, what="the route to go away")


def test_bad_routes_are_left_out_and_the_others_still_serve(http: httpx.Client, platform: Platform) -> None:
    """A route naming an undeployed function or an unknown path param is ignored, not fatal."""
    original = platform.revision.number
    bad = (
        RouteSpec("GET", "/ghost", f"{ACT}.ghost"),
        RouteSpec("GET", "/double-of/{y}", f"{ACT}.double"),
    )
    try:
        platform.put_routes((*bad, *ROUTES))
        wait_for(lambda: http.get("/ghost").status_code == 404, timeout=10, what="the bad route to be ignored")
        assert http.get("/double-of/3").status_code == 404
        assert http.post("/double/3").json() == 6
    finally:
        platform.activate(original)
