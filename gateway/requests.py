"""Reading requests safely: bounded bodies, JSON, wait times, idempotency keys, tags."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..platform.client import MAX_IDEMPOTENCY_KEY
from ..platform.errors import PayloadTooLargeError
from .decoding import query_items, query_value
from .errors import BadRequestError

_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes.

    `PayloadTooLargeError` (413 `payload_too_large`) when `Content-Length` says so, or once the bytes read pass
    it; `BadRequestError` (400 `bad_request`) for a `Content-Length` that is not a number.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequestError(f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise _too_large(size, limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(received, limit, at_least=True)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> PayloadTooLargeError:
    amount = f"over {limit}" if at_least else str(size)
    return PayloadTooLargeError(
        f"the request body is {amount} bytes, over this gateway's limit of {limit} bytes; "
        "pass large data by reference (e.g. a URL), or raise the limit: DOLMEN_MAX_VALUE_BYTES on gateways "
        "and runners (the body limit follows at twice it), or `platform gateway --max-body-bytes`"
    )


def parse_json(body: bytes) -> Any:
    """The JSON document in `body` (RFC 8259), None when there is none; 400 naming the position when it is not JSON.

    `BadRequestError` (`bad_request`, path `body`) for bytes that are not UTF-8, text that is not JSON, the
    constants `NaN`/`Infinity` (no JSON values), a number Python refuses, or nesting too deep.

    None is also what the document `null` gives: an endpoint that takes an object reads its body with
    `object_body`, which tells them apart.
    """
    if not body.strip():
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"the request body is not UTF-8 (bad byte at offset {exc.start})", path="body") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path="body"
        ) from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise BadRequestError(f"the request body is not usable JSON: {exc}", path="body") from None
    except RecursionError:
        raise BadRequestError("the request body's JSON is nested too deeply", path="body") from None


def _reject_constant(name: str) -> Any:
    raise BadRequestError(
        f"the request body is not valid JSON: {name} is not a JSON value (write it as the string \"{name}\")",
        path="body",
    )


@dataclass(frozen=True, slots=True)
class WaitRequest:
    """How long to wait for an execution (`seconds`), and whether `Prefer` asked (then Preference-Applied answers)."""

    seconds: float
    from_prefer: bool = False


def wait_time(request: Request, *, default: float, cap: float, use_query: bool = True) -> WaitRequest:
    """`?wait=SECONDS`, else `Prefer: wait=N` (RFC 7240 §4.3), else `default`; never over `cap` (seconds all).

    `Prefer: respond-async` (§4.1) without `wait` is 0. `BadRequestError` (400, path `wait`) for a value that
    is not a finite number >= 0. `use_query` False ignores `?wait` (a route's query binds function params).
    """
    raw = query_value(request, "wait") if use_query else None
    if raw is not None:
        return WaitRequest(min(_seconds(raw, "wait query parameter"), cap))
    prefer = _prefer(request.headers.getlist("prefer"))
    if "respond-async" in prefer and "wait" not in prefer:
        return WaitRequest(0.0, True)
    if "wait" in prefer:
        return WaitRequest(min(_seconds(prefer["wait"], "Prefer: wait"), cap), True)
    return WaitRequest(min(default, cap))


def _seconds(raw: str, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BadRequestError(f"the {what} must be a number of seconds >= 0, got {raw!r}", path="wait")
    return value


def _prefer(values: list[str]) -> dict[str, str]:
    """The preferences of Prefer headers: `respond-async, wait=10` -> {respond-async: '', wait: '10'}."""
    out: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            token = item.split(";", 1)[0].strip()
            if not token:
                continue
            name, _, arg = token.partition("=")
            out.setdefault(name.strip().lower(), arg.strip().strip('"'))
    return out


def idempotency_key(request: Request) -> str | None:
    """The `Idempotency-Key` header, if any; 400 unless it is printable ASCII.

    The header of the IETF draft "The Idempotency-Key HTTP Header Field"
    (draft-ietf-httpapi-idempotency-key-header).
    `BadRequestError` (400, path `Idempotency-Key`) for a byte outside 0x20-0x7E, or a key (stripped) that is
    empty or over MAX_IDEMPOTENCY_KEY characters.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    # Starlette decodes header bytes as Latin-1: UTF-8 'é' would be stored as the key 'Ã©'.
    found = _NOT_PRINTABLE_ASCII.search(key)
    if found is not None:
        raise BadRequestError(
            f"the Idempotency-Key header holds the byte 0x{ord(found.group()):02X} at offset {found.start()}; "
            "use printable ASCII, e.g. a UUID",
            path="Idempotency-Key",
        )
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequestError(
            f"the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} characters, got {len(key)}; e.g. use a UUID",
            path="Idempotency-Key",
        )
    return key


# What `POST /v1/functions/{ffqn}` reads from its query; any other name is a mistake worth telling.
INVOKE_QUERY = ("wait", "tag", "priority")
# What `GET /v1/executions` takes (`check_query`); the other endpoints' lists are where they call it.
LIST_QUERY = ("ffqn", "status", "outcome", "digest", "root", "tag", "limit", "cursor")


def check_query(request: Request, allowed: tuple[str, ...] = (), hint: str = "see GET /openapi.json") -> None:
    """Refuse a query parameter not in `allowed` (a misspelt `?priorty=high` must not pass unseen), or given twice when
    it is not `tag`; `hint` ends the message. `BadRequestError` (400, `path` the parameter's name).

    Every fixed endpoint calls it (an empty `allowed`: it takes none); only the deployment routes, whose query
    binds function params, do not.
    """
    seen: set[str] = set()
    for name, _ in query_items(request):
        if name not in allowed:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no query parameters"
            raise BadRequestError(f"unknown query parameter {name!r}; this endpoint {takes} ({hint})", path=name)
        if name in seen and name != "tag":
            raise BadRequestError(f"the query parameter {name!r} is given twice; give it once", path=name)
        seen.add(name)


def object_body(body: bytes, allowed: tuple[str, ...] | None, *, shape: str) -> dict[str, Any]:
    """The JSON object in the body of an endpoint that takes one; no body at all is `{}`.

    Any other JSON document is a 400 naming what was sent and `shape` (what to send instead): `null`
    too, which is a document, not the absence of one. With `allowed`, a field not in it is a 400 naming
    the accepted ones, so a misspelt or unsupported field (`{"at": 3, "component": ...}`) does not pass
    unseen. Each 400 is a `BadRequestError` (`bad_request`), as `parse_json`'s are.
    """
    if not body.strip():
        return {}
    value = parse_json(body)
    if not isinstance(value, dict):
        raise BadRequestError(f"the body is {_json_kind(value)}, not an object; send {shape}", path="body")
    for name in value if allowed is not None else ():
        if name not in allowed:
            takes = f"takes only {', '.join(repr(a) for a in allowed)}" if allowed else "takes no fields (send no body or {})"
            raise BadRequestError(f"unknown field {name!r} in the body; this endpoint {takes}", path=name)
    return value


def _json_kind(value: Any) -> str:
    """What a JSON document that is not an object is, for a message."""
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return f"the JSON boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return "a JSON number"
    return "a JSON string" if isinstance(value, str) else "a JSON array"


def tag_texts(request: Request) -> list[str]:
    """Every `tag=KEY=VALUE` query parameter, in order (checked by platform/tags.py: `parse_tags`, `parse_filter`)."""
    return [value for name, value in query_items(request) if name == "tag"]


def bool_param(raw: str | None, name: str) -> bool:
    """A `true`/`false` query value (absent or empty: false); `BadRequestError` (400 `bad_request`) naming `name`
    otherwise."""
    if raw is None or raw in ("", "false"):
        return False
    if raw == "true":
        return True
    raise BadRequestError(f"{name} must be true or false, got {raw!r}", path=name)


def int_param(
    raw: str | None, name: str, *, default: int, low: int, high: int | None = None, what: str = "query parameter"
) -> int:
    """An integer query value or header (`what`), `default` when absent or empty; `BadRequestError` (400
    `bad_request`) naming `name` when it is no integer or lies outside `low`..`high`."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"the {name} {what} must be an integer, got {raw!r}", path=name) from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise BadRequestError(f"the {name} {what} must be {bound}, got {value}", path=name)
    return value
