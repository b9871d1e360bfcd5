"""Every error answer: its status, its JSON shape, the field it names, no stack trace."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.gateway.helpers import ACT, GatewayThread

DOUBLE = f"{ACT}.double"


def assert_error(response: httpx.Response, status: int, code: str, path: str | None = None) -> str:
    """The answer is `status` with the error JSON shape and no traceback; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert error["path"] == path
    assert "Traceback" not in response.text and 'File "' not in response.text
    return error["message"]


def test_unknown_ffqn_is_404_naming_similar_functions(http: httpx.Client) -> None:
    """An ffqn that is not deployed answers 404 and suggests the deployed ones."""
    message = assert_error(http.post(f"/v1/functions/{ACT}.tripple", json=[1]), 404, "not_found")
    assert f"{ACT}.tripple" in message
    assert "GET /v1/functions lists what is" in message  # a way to look that an HTTP client has too


def test_malformed_ffqn_is_400(http: httpx.Client) -> None:
    """A name that is not an ffqn answers 400 with an example of one, `path` naming the path parameter."""
    message = assert_error(http.post("/v1/functions/double", json=[1]), 400, "invalid_name", "ffqn")
    assert "namespace:package/interface" in message


def test_wrong_param_type_is_400_naming_the_field(http: httpx.Client) -> None:
    """A param of the wrong WIT type answers 400 whose path names it."""
    message = assert_error(http.post(f"/v1/functions/{ACT}.slow", json={"ms": 5, "tag": 7}), 400, "invalid_value", "params.tag")
    assert "expected string" in message
    assert_error(http.post(f"/v1/functions/{ACT}.slow", json=[5, "t", 1]), 400, "invalid_value", "params")
    assert_error(http.post(f"/v1/functions/{ACT}.slow", json=["5", "t"]), 400, "invalid_value", "params[0]")


def test_out_of_range_and_missing_and_unknown_params_are_400(http: httpx.Client) -> None:
    """Range, missing and unknown params each answer 400 naming the param."""
    message = assert_error(http.post(f"/v1/functions/{DOUBLE}", json={"x": -1}), 400, "invalid_value", "params.x")
    assert "does not fit in u64" in message
    assert_error(http.post(f"/v1/functions/{ACT}.slow", json={"ms": 5}), 400, "invalid_value", "params.tag")
    assert_error(http.post(f"/v1/functions/{DOUBLE}", json={"x": 1, "y": 2}), 400, "invalid_value", "params.y")


def test_bad_json_is_400(http: httpx.Client) -> None:
    """A body that is not JSON answers 400 naming the body and the position."""
    message = assert_error(
        http.post(f"/v1/functions/{DOUBLE}", content=b'{"x": 1', headers={"content-type": "application/json"}),
        400,
        "bad_request",
        "body",
    )
    assert "line 1" in message
    assert_error(http.post(f"/v1/functions/{DOUBLE}", content=b'{"x": NaN}'), 400, "bad_request", "body")
    assert_error(http.post(f"/v1/functions/{DOUBLE}", content=b"\xff\xfe"), 400, "bad_request", "body")


def test_an_empty_body_for_a_function_with_params_says_what_to_send(http: httpx.Client) -> None:
    """No body at all (or `null`) is 400 naming the parameters to send, not "got null"."""
    for content in (b"", b"  ", b"null"):
        message = assert_error(http.post(f"/v1/functions/{DOUBLE}", content=content), 400, "invalid_value", "params")
        assert "no parameters were given" in message and "(x)" in message and "got null" not in message


def test_bad_wait_is_400(http: httpx.Client) -> None:
    """A wait that is not a number of seconds answers 400."""
    assert_error(http.post(f"/v1/functions/{DOUBLE}?wait=soon", json=[1]), 400, "bad_request", "wait")
    assert_error(http.post(f"/v1/functions/{DOUBLE}", json=[1], headers={"Prefer": "wait=-3"}), 400, "bad_request", "wait")


def test_oversized_body_is_413(start_gateway: Callable[..., GatewayThread]) -> None:
    """A body over the limit answers 413, with Content-Length or streamed without it."""
    server = start_gateway(max_body_bytes=1000)
    with server.client() as http:
        big = {"ms": 1, "tag": "x" * 2000}
        assert_error(http.post(f"/v1/functions/{ACT}.slow", json=big), 413, "payload_too_large")

        def chunks() -> object:
            for _ in range(10):
                yield b" " * 500

        streamed = http.post(f"/v1/functions/{ACT}.slow", content=chunks())  # type: ignore[arg-type]
        assert_error(streamed, 413, "payload_too_large")
        assert http.post(f"/v1/functions/{ACT}.slow", json={"ms": 1, "tag": "small"}).status_code == 202


def test_wait_is_capped_by_the_gateway(start_gateway: Callable[..., GatewayThread]) -> None:
    """A client asking to wait longer than the cap gets 202 once the cap runs out."""
    server = start_gateway(max_wait_s=0.3)
    with server.client() as http:
        response = http.post(f"/v1/functions/{ACT}.slow?wait=30", json={"ms": 3000, "tag": "t"})
        assert response.status_code == 202
        assert response.elapsed.total_seconds() < 5


def test_unknown_path_and_wrong_method_are_json_errors(http: httpx.Client) -> None:
    """Paths the gateway does not serve answer 404 JSON; a known route with another method 405."""
    assert_error(http.get("/no/such/thing"), 404, "not_found")
    assert_error(http.delete("/double/3"), 405, "method_not_allowed")


def test_store_down_is_503_without_internals(start_gateway: Callable[..., GatewayThread]) -> None:
    """With Redis unreachable, API calls answer 503 and /healthz reports unhealthy."""
    server = start_gateway(redis_url="redis://127.0.0.1:1")
    with server.client() as http:
        message = assert_error(http.get("/v1/functions"), 503, "store_error")
        assert "127.0.0.1:1" in message or "cannot reach" in message
        assert http.get("/healthz").status_code == 503
        assert_error(http.get("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2"), 503, "store_error")
