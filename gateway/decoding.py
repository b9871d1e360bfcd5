"""Path and query text as the client sent it: percent-decoded strictly as UTF-8.

uvicorn percent-decodes `scope["path"]` with `errors="replace"` and Starlette's
`QueryParams` does the same to the query string, so `caf%E9` arrives as `caf`
and U+FFFD, indistinguishable from a real U+FFFD, and would be stored as one.
The gateway reads `raw_path` and `query_string` again here: a byte that is not
UTF-8 is refused with 400 naming the parameter that holds it, like a body that
is not UTF-8 (`requests.parse_json`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from ..platform.errors import InvalidNameError
from ..platform.ffqn import Ffqn
from ..platform.ids import ExecutionId
from .errors import BadRequestError

# surrogateescape turns each byte 0x80-0xFF that is not part of a UTF-8 character into U+DC80-U+DCFF.
_ESCAPED_BYTE = re.compile(r"[\udc80-\udcff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _percent_decoded(raw: bytes) -> str:
    return unquote_to_bytes(raw).decode("utf-8", "surrogateescape")


def require_utf8(text: str, what: str, path: str) -> str:
    """`text` from `_percent_decoded`; 400 naming `what` if the client sent bytes that are not UTF-8.

    `BadRequestError` with `path` as its path; percent-encoding as RFC 3986 §2.1 defines it.
    """
    found = _ESCAPED_BYTE.search(text)
    if found is not None:
        byte = ord(found.group()) - 0xDC00
        raise BadRequestError(
            f"{what} is not UTF-8 once percent-decoded (bad byte %{byte:02X}); "
            "percent-encode the UTF-8 bytes of the text, e.g. é as %C3%A9",
            path=path,
        )
    return text


def require_name(text: str, what: str, path: str) -> str:
    """UTF-8 text that names something (a path segment, a function): no control characters either.

    `BadRequestError` (400, path `path`) for bytes that are not UTF-8 or a character 0x00-0x1F or 0x7F.
    """
    require_utf8(text, what, path)
    found = _CONTROL.search(text)
    if found is not None:
        # Validators anchored with `$` let a trailing %0A through, and logs would show the rest as a new line.
        raise BadRequestError(
            f"{what} holds the control character %{ord(found.group()):02X}; remove it",
            path=path,
        )
    return text


def decoded_path(request: Request) -> str:
    """The request path percent-decoded, with a byte that is not UTF-8 kept as U+DC80-U+DCFF for `require_utf8`."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes) or b"%" not in raw:
        path: str = request.scope["path"]
        return path  # nothing was percent-decoded, so nothing was replaced
    return _percent_decoded(raw)


def decoded_segments(request: Request) -> list[str]:
    """The request path split on '/' as sent, each segment percent-decoded on its own (so %2F stays in its segment)."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes) or b"%" not in raw:
        path: str = request.scope["path"]
        return path.split("/")
    return [_percent_decoded(segment) for segment in raw.split(b"/")]


def path_param(request: Request, name: str) -> str:
    """Path parameter `name` of the matched API route; 400 naming it if it is not UTF-8 or holds a control character.

    The whole path is checked: the API's paths are ASCII around their one parameter, so what is wrong
    with the path is wrong with it, and Starlette's `$`-anchored pattern leaves a trailing %0A out of it.
    """
    require_name(decoded_path(request), f"path parameter '{name}'", name)
    value: str = request.path_params[name]
    return value


def execution_id_param(request: Request, name: str = "id") -> str:
    """Path parameter `name` as an execution id; `InvalidNameError` (400 `invalid_name`) with `path` naming it."""
    text = path_param(request, name)
    try:
        return ExecutionId.parse(text).value
    except InvalidNameError as exc:
        exc.path = name
        raise


def ffqn_text(text: str, path: str) -> str:
    """`text` when it is a function name; `InvalidNameError` (400 `invalid_name`) with `path` naming where it came from."""
    try:
        Ffqn.parse(text)
    except InvalidNameError as exc:
        exc.path = path
        raise
    return text


def ffqn_param(request: Request, name: str = "ffqn") -> str:
    """Path parameter `name` as a function name; `InvalidNameError` with `path` naming it."""
    return ffqn_text(path_param(request, name), name)


def _query_pairs(request: Request) -> Iterator[tuple[str, bytes]]:
    raw = request.scope.get("query_string") or b""
    for piece in raw.split(b"&"):
        if piece:
            name, _, value = piece.partition(b"=")
            yield _percent_decoded(name.replace(b"+", b" ")), value


def _query_text(raw: bytes, name: str, prefix: str = "") -> str:
    return require_utf8(_percent_decoded(raw.replace(b"+", b" ")), f"query parameter '{name}'", prefix + name)


def query_items(request: Request, prefix: str = "") -> list[tuple[str, str]]:
    """Every (name, value) of the query string in order; 400 naming a parameter that is not UTF-8.

    The error's `path` is `prefix` + the name: a route's query parameters are
    function params, named `params.NAME` like the path's and the body's.
    """
    items: list[tuple[str, str]] = []
    for name, value in _query_pairs(request):
        require_utf8(name, "a query parameter name", "query")
        items.append((name, _query_text(value, name, prefix)))
    return items


def query_value(request: Request, name: str) -> str | None:
    """The last value of query parameter `name` (as Starlette's `query_params[name]`), None when absent.

    `BadRequestError` (400) when that value is not UTF-8 once percent-decoded.
    """
    last: bytes | None = None
    for key, value in _query_pairs(request):
        if key == name:
            last = value
    return None if last is None else _query_text(last, name)
