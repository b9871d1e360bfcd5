"""Test activities: trivial, slow, sleeping, HTTP, looping, trapping, environment, output."""

import os
import sys
import time
from urllib.parse import urlparse

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports import types as http


def _get(url: str) -> tuple[int, str]:
    parts = urlparse(url)
    request = http.OutgoingRequest(http.Fields.from_list([]))
    request.set_scheme(http.Scheme_Http() if parts.scheme == "http" else http.Scheme_Https())
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    try:
        future = outgoing_handler.handle(request, None)
    except Err as refused:  # e.g. HTTP-request-denied: the platform's egress rules refused it
        raise Err(f"request refused: {refused.value}") from None
    future.subscribe().block()
    answer = future.get()  # option<result<result<incoming-response, error-code>>>
    if answer is None or isinstance(answer, Err):
        raise Err("no response")
    inner = answer.value
    if isinstance(inner, Err):
        raise Err(f"request failed: {inner.value}")
    response = inner.value
    status = response.status()
    body = response.consume()
    stream = body.stream()
    chunks = []
    while True:
        try:
            stream.subscribe().block()
            chunks.append(stream.read(65536))
        except Err:
            break
    return status, b"".join(chunks).decode("utf-8", "replace")


class Basic(exports.Basic):
    def double(self, x: int) -> int:
        return 2 * x

    def slow(self, ms: int, tag: str) -> str:
        end = time.monotonic() + ms / 1000
        while time.monotonic() < end:
            pass
        return tag

    def fetch(self, url: str) -> str:
        status, text = _get(url)
        if status >= 400:
            raise Err(f"HTTP {status}: {text.strip()}")
        return text

    def spin(self) -> None:
        while True:
            pass

    def crash(self, message: str) -> None:
        raise RuntimeError(message)

    def env(self, name: str) -> str | None:
        return os.environ.get(name)

    def shout(self, message: str) -> int:
        print(message)
        print(f"stderr: {message}", file=sys.stderr)
        return len(message)

    def nap(self, ms: int) -> int:
        time.sleep(ms / 1000)
        return ms

    def maybe(self, fail: bool) -> int:
        if fail:
            raise Err("asked to fail")
        return 7
