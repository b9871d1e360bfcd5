"""Path, query and header text as the client sent it: bytes that are not UTF-8 are a 400 naming the parameter."""

from __future__ import annotations

import uuid
from urllib.parse import unquote

import httpx
import pytest
from starlette.requests import Request

from dolmen.gateway.decoding import decoded_path, query_items, query_value, require_name
from dolmen.gateway.errors import BadRequestError
from tests.gateway.helpers import ACT
from tests.gateway.test_errors import assert_error

DOUBLE = f"{ACT}.double"
EXECUTION_ID = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"


def scope_request(raw_path: bytes = b"/", query: bytes = b"") -> Request:
    """A request as uvicorn hands it over: `path` decoded with errors='replace', `raw_path` as sent."""
    path = unquote(raw_path.decode("ascii"))
    return Request({"type": "http", "method": "GET", "path": path, "raw_path": raw_path, "query_string": query, "headers": []})


def send_raw(http: httpx.Client, method: str, target: bytes, **kwargs: object) -> httpx.Response:
    """Send `target` (path and query) byte for byte, percent-escapes included."""
    request = http.build_request(method, "/", **kwargs)  # type: ignore[arg-type]
    request.url = request.url.copy_with(raw_path=target)
    assert request.url.raw_path == target
    return http.send(request)


# ------------------------------------------------------------------ units


def test_query_items_decode_utf8_and_keep_order_and_blanks() -> None:
    """Percent-escapes, raw UTF-8 bytes, '+' and blank values decode as a browser encodes them."""
    request = scope_request(query=b"a=1&b=caf%C3%A9&c&d=x+y&t=caf\xc3\xa9&a=2")
    assert query_items(request) == [("a", "1"), ("b", "café"), ("c", ""), ("d", "x y"), ("t", "café"), ("a", "2")]
    assert query_value(request, "a") == "2" and query_value(request, "nope") is None


@pytest.mark.parametrize(("query", "path", "fragment"), [
    (b"tag=caf%E9", "tag", "query parameter 'tag' is not UTF-8 once percent-decoded (bad byte %E9)"),
    (b"tag=caf\xe9", "tag", "bad byte %E9"),
    (b"caf%E9=1", "query", "a query parameter name is not UTF-8"),
])  # fmt: skip
def test_query_text_that_is_not_utf8_is_refused(query: bytes, path: str, fragment: str) -> None:
    """A query value or name that is not UTF-8 is refused, naming it and the bad byte, with the fix."""
    with pytest.raises(BadRequestError) as caught:
        query_items(scope_request(query=query))
    assert caught.value.path == path and fragment in caught.value.message and "%C3%A9" in caught.value.message


def test_query_value_reads_only_the_parameter_asked_for() -> None:
    """A bad byte in a parameter nobody reads does not refuse the request."""
    assert query_value(scope_request(query=b"x=%FF&wait=3"), "wait") == "3"
    with pytest.raises(BadRequestError, match="query parameter 'wait'"):
        query_value(scope_request(query=b"wait=%FF"), "wait")


def test_decoded_path_keeps_the_bytes_uvicorn_replaced() -> None:
    """uvicorn's path has U+FFFD for %E9; the decoded path keeps the byte so it can be refused."""
    request = scope_request(b"/files/caf%E9")
    assert request.scope["path"] == "/files/caf\ufffd"
    assert decoded_path(request) == "/files/caf\udce9"
    assert decoded_path(scope_request(b"/files/caf%EF%BF%BD")) == "/files/caf\ufffd"
    assert decoded_path(scope_request(b"/plain")) == "/plain"


def test_names_refuse_control_characters() -> None:
    """A trailing %0A, which a `$`-anchored pattern lets through, is refused with its offset."""
    with pytest.raises(BadRequestError, match="holds the control character %0A; remove it") as caught:
        require_name(f"{EXECUTION_ID}\n", "path parameter 'id'", "id")
    assert caught.value.path == "id"


# ------------------------------------------------------ through the gateway


def test_route_parameter_that_is_not_utf8_is_400_naming_it(http: httpx.Client) -> None:
    """POST /slow/caf%E9 is refused with the parameter's name, as a body that is not UTF-8 is; caf%C3%A9 is café."""
    message = assert_error(send_raw(http, "POST", b"/slow/caf%E9", json={"ms": 1}), 400, "bad_request", "params.tag")
    assert "path parameter 'tag' is not UTF-8 once percent-decoded (bad byte %E9)" in message and "%C3%A9" in message
    assert send_raw(http, "POST", b"/slow/caf%C3%A9", json={"ms": 1}).json() == "café"


def test_route_parameter_keeps_encoded_question_mark_hash_and_backslash(http: httpx.Client) -> None:
    """%3F, %23 and %5C in a path parameter reach the function as '?', '#' and '\\', not as escapes."""
    assert send_raw(http, "POST", b"/slow/a%3Fb%23c%5Cd", json={"ms": 1}).json() == "a?b#c\\d"


@pytest.mark.parametrize("tag", ["a%00b", "a%0Db", "a%1Bb", "a%7Fb", "ab%0A"])
def test_route_parameter_with_a_control_character_is_400(http: httpx.Client, tag: str) -> None:
    """NUL, a trailing line feed and other control characters are refused in a path parameter."""
    message = assert_error(send_raw(http, "POST", f"/slow/{tag}".encode(), json={"ms": 1}), 400, "bad_request", "params.tag")
    escape = tag[tag.index("%") : tag.index("%") + 3]
    assert f"path parameter 'tag' holds the control character {escape}; remove it" in message


def test_route_parameter_keeps_an_encoded_slash(http: httpx.Client) -> None:
    """%2F in a path parameter is a '/' inside it, not a segment boundary (it used to answer 404)."""
    assert send_raw(http, "POST", b"/slow/a%2Fb", json={"ms": 1}).json() == "a/b"
    assert send_raw(http, "POST", b"/slow/%2F", json={"ms": 1}).json() == "/"


def test_a_line_feed_inside_a_path_parameter_is_400_not_404(http: httpx.Client) -> None:
    message = assert_error(send_raw(http, "POST", b"/slow/a%0Ab", json={"ms": 1}), 400, "bad_request", "params.tag")
    assert "holds the control character %0A" in message


def test_route_query_parameter_that_is_not_utf8_is_400_naming_it(http: httpx.Client) -> None:
    """GET /slow?tag=caf%E9 is refused naming 'params.tag', as a path parameter is; the UTF-8 spelling binds."""
    message = assert_error(send_raw(http, "GET", b"/slow?ms=1&tag=caf%E9"), 400, "bad_request", "params.tag")
    assert "query parameter 'tag'" in message
    assert send_raw(http, "GET", b"/slow?ms=1&tag=caf%C3%A9").json() == "café"


def test_a_path_that_is_not_utf8_outside_any_route_is_400(http: httpx.Client) -> None:
    """A bad byte in a path no route matches is named as the path, not answered 404 with U+FFFD in it."""
    message = assert_error(send_raw(http, "GET", b"/nowhere/%E9"), 400, "bad_request", "path")
    assert "the path is not UTF-8" in message


def test_api_wait_query_that_is_not_utf8_is_400(http: httpx.Client) -> None:
    """?wait=%FF on an invocation names the wait query parameter and the byte."""
    message = assert_error(send_raw(http, "POST", f"/v1/functions/{DOUBLE}?wait=%FF".encode(), json=[1]), 400, "bad_request", "wait")
    assert "bad byte %FF" in message


@pytest.mark.parametrize(("method", "target", "path"), [
    ("POST", f"/v1/functions/{DOUBLE}%E9", "ffqn"),
    ("GET", f"/v1/functions/{DOUBLE}%E9", "ffqn"),
    ("GET", f"/v1/executions/{EXECUTION_ID}%E9", "id"),
    ("GET", f"/v1/executions/{EXECUTION_ID}%E9/events", "id"),
    ("GET", f"/v1/executions/{EXECUTION_ID}%E9/result", "id"),
    ("POST", f"/v1/executions/{EXECUTION_ID}%E9/cancel", "id"),
])  # fmt: skip
def test_api_path_segments_that_are_not_utf8_are_400(http: httpx.Client, method: str, target: str, path: str) -> None:
    """The ffqn and the execution id in API paths are refused naming them when a byte is not UTF-8."""
    message = assert_error(send_raw(http, method, target.encode(), json=[1] if method == "POST" else None), 400, "bad_request", path)
    assert f"path parameter '{path}' is not UTF-8 once percent-decoded (bad byte %E9)" in message


def test_api_names_with_a_trailing_line_feed_are_400(http: httpx.Client) -> None:
    """An id or ffqn ending in %0A is refused, not looked up as another name (a `$` anchor accepts it)."""
    assert_error(send_raw(http, "GET", f"/v1/executions/{EXECUTION_ID}%0A".encode()), 400, "bad_request", "id")
    assert_error(send_raw(http, "POST", f"/v1/functions/{DOUBLE}%0A".encode(), json=[1]), 400, "bad_request", "ffqn")
    assert_error(send_raw(http, "GET", f"/v1/executions?ffqn={DOUBLE}%0A".encode()), 400, "bad_request", "ffqn")
    assert_error(send_raw(http, "GET", b"/v1/executions?status=%FF"), 400, "bad_request", "status")


def test_idempotency_key_that_is_not_printable_ascii_is_400(http: httpx.Client) -> None:
    """A key with UTF-8 bytes (which Starlette would read as Latin-1 'Ã©') is refused, on the API and on routes."""
    key = f"café-{uuid.uuid4()}".encode()
    message = assert_error(http.post(f"/v1/functions/{DOUBLE}", json=[1], headers={b"Idempotency-Key": key}), 400, "bad_request", "Idempotency-Key")
    assert "byte 0xC3 at offset 3" in message and "printable ASCII" in message
    assert_error(http.post("/double/1", headers={b"Idempotency-Key": key}), 400, "bad_request", "Idempotency-Key")
    assert http.post(f"/v1/functions/{DOUBLE}", json=[1], headers={"Idempotency-Key": f"ok-{uuid.uuid4()}"}).status_code == 202
