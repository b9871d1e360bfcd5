"""Stopping activity calls: time limits and cancellation reach a guest blocked in WASI (sleep, poll, HTTP).

The guest is the act-basic component: `nap` sleeps with `time.sleep` (it waits
in `wasi:io/poll`), `fetch` GETs a URL with wasi:http, `spin` loops in wasm.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dolmen.platform.errors import CancelledError, ExecutionTimeoutError
from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.activity_host import ActivityFailed, ActivityHost, ActivityLimits, ActivityOutcome
from dolmen.platform.wasm.egress import EgressPolicy
from dolmen.platform.wasm.engine import EpochTicker
from dolmen.platform.wasm.guard import native_wasi_version
from dolmen.platform.wasm.interruption import SLICE_TICKS, Interruption
from dolmen.platform.wasm.loader import ComponentLoader
from tests.support.guests import load_guest
from tests.support.servers import HelloServer

BASIC = "testing:act/basic@1.0.0"
# The test servers listen on loopback, which activities may reach only when it is listed.
LOCAL = EgressPolicy.allowing(["127.0.0.1:*"])


@pytest.fixture(scope="module")
def basic(guest_loader: ComponentLoader) -> Iterator[ActivityHost]:
    """An activity host for act-basic, its engine ticked."""
    ticker = EpochTicker()
    loaded = load_guest(guest_loader, "act-basic", "activities")
    ticker.add(loaded.engine)
    host = ActivityHost(loaded)
    yield host
    host.close()
    ticker.stop()


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """An HTTP server that answers after 60 s (or when the test ends)."""
    release = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(60)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"late")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    release.set()
    server.shutdown()
    server.server_close()


def call(host: ActivityHost, function: str, params: list[Any], interruption: Interruption | None = None, **limits: Any) -> ActivityOutcome:
    ffqn = Ffqn.parse(f"{BASIC}.{function}")
    return host.call(ffqn, host.loaded.info.functions()[ffqn], params, ActivityLimits(**limits), interruption)


def failure(host: ActivityHost, function: str, params: list[Any], interruption: Interruption | None = None, **limits: Any) -> tuple[ActivityFailed, float]:
    """The failure of a call that must fail, and how long the call took in seconds."""
    start = time.monotonic()
    with pytest.raises(ActivityFailed) as info:
        call(host, function, params, interruption, **limits)
    return info.value, time.monotonic() - start


def test_a_sleep_ends_at_the_time_limit_with_a_message_that_says_so(basic: ActivityHost) -> None:
    """`time.sleep(60)` under a 500 ms limit stops at the limit; the message names the wait."""
    failed, elapsed = failure(basic, "nap", [60_000], timeout_ms=500)
    assert isinstance(failed.error, ExecutionTimeoutError)
    assert failed.error.message.startswith("the guest ran past its time limit of 500 ms while it waited in wasi:io/poll")
    assert "the wait was cut short" in failed.error.message
    assert 0.5 <= elapsed < 30  # the sleep would have lasted 60 s


def test_sleeps_within_the_limit_and_without_one_still_work(basic: ActivityHost) -> None:
    assert call(basic, "nap", [50], timeout_ms=5_000).result == 50
    assert call(basic, "nap", [50], timeout_ms=None).result == 50
    assert call(basic, "double", [21], timeout_ms=5_000).result == 42


def test_an_http_request_to_a_slow_server_ends_at_the_time_limit(basic: ActivityHost, slow_server: str) -> None:
    """Waiting 60 s for an answer stops at a 1 s limit, as a timeout, every time.

    The request's own timeouts end a little after the deadline
    (`HTTP_TIMEOUT_MARGIN_NS`): the guest never sees an HTTP error first and
    returns it as a final `err` instead of a retried timeout.
    """
    for _ in range(5):
        failed, elapsed = failure(basic, "fetch", [slow_server], timeout_ms=1_000, egress=LOCAL)
        assert isinstance(failed.error, ExecutionTimeoutError)
        assert "while it waited in wasi:io/poll" in failed.error.message
        assert elapsed < 30


def test_requests_with_and_without_a_time_limit_still_get_their_answers(basic: ActivityHost) -> None:
    server = HelloServer()
    try:
        for timeout_ms in (None, 5_000):
            assert call(basic, "fetch", [server.url], timeout_ms=timeout_ms, egress=LOCAL).result == {"ok": "hello"}
    finally:
        server.close()


def test_cancelling_a_sleeping_guest_stops_it(basic: ActivityHost) -> None:
    interruption = Interruption(60_000)
    threading.Timer(0.3, interruption.cancel, ["its parent workflow was cancelled"]).start()
    failed, elapsed = failure(basic, "nap", [60_000], interruption, timeout_ms=60_000)
    assert isinstance(failed.error, CancelledError)
    assert failed.error.message == "cancelled while it ran: its parent workflow was cancelled"
    assert elapsed < 30


def test_cancelling_a_spinning_guest_stops_it(basic: ActivityHost) -> None:
    """A guest in a wasm loop sees the cancellation at its next epoch slice."""
    interruption = Interruption(None)
    threading.Timer(0.3, interruption.cancel, ["by request"]).start()
    failed, elapsed = failure(basic, "spin", [], interruption, timeout_ms=None)
    assert isinstance(failed.error, CancelledError)
    assert elapsed < 30


def test_a_cancellation_before_the_call_starts_stops_it_at_once(basic: ActivityHost) -> None:
    interruption = Interruption(60_000)
    interruption.cancel("early")
    failed, _ = failure(basic, "double", [1], interruption)
    assert isinstance(failed.error, CancelledError)


def test_a_guest_that_loops_is_still_interrupted_at_its_limit(basic: ActivityHost) -> None:
    failed, elapsed = failure(basic, "spin", [], timeout_ms=300)
    assert isinstance(failed.error, ExecutionTimeoutError)
    assert failed.error.message.startswith("the guest ran past its time limit of 300 ms and was interrupted")
    assert 0.3 <= elapsed < 30


def test_the_instance_after_an_interrupted_call_is_not_reused(basic: ActivityHost) -> None:
    """Every call after an interruption works: the stopped instance was dropped."""
    failure(basic, "nap", [60_000], timeout_ms=200)
    assert call(basic, "nap", [10], timeout_ms=5_000).result == 10


def test_interruption_deadlines() -> None:
    """Epoch deadlines are at most one slice ahead, one tick more than the time left, and never early."""
    assert Interruption(None).ticks() == SLICE_TICKS
    short = Interruption(25)
    short.start()
    assert 1 <= short.ticks() <= 4
    assert short.due() is None
    time.sleep(0.03)
    first = short.due()
    assert isinstance(first, ExecutionTimeoutError)
    short.cancel("later")
    assert short.due() is first  # the first reason sticks
    assert Interruption(10_000).ticks() == SLICE_TICKS


def test_the_guard_finds_wasmtimes_wasi_version(basic: ActivityHost) -> None:
    """The guard shadows WASI under the exact name wasmtime defines it (0.2.x, x >= 0)."""
    version = native_wasi_version(basic.loaded.engine)
    assert version.startswith("0.2.")
