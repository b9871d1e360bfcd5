"""Egress of real activity calls: act-basic's `fetch` against a local HTTP server, refused or allowed.

The server listens on 127.0.0.1, a loopback address: refused by default,
allowed when a pattern lists it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.activity_host import ActivityFailed, ActivityHost, ActivityLimits, ActivityOutcome
from dolmen.platform.wasm.egress import EgressPolicy
from dolmen.platform.wasm.loader import ComponentLoader
from tests.support.guests import load_guest
from tests.support.servers import HelloServer

BASIC = "testing:act/basic@1.0.0"
GRANT = "list {pattern} under allowed_hosts of component 'fetcher' in the deployment to allow it"


@pytest.fixture(scope="module")
def basic(guest_loader: ComponentLoader) -> Iterator[ActivityHost]:
    """An activity host for act-basic."""
    host = ActivityHost(load_guest(guest_loader, "act-basic", "activities"))
    yield host
    host.close()


@pytest.fixture(scope="module")
def server() -> Iterator[HelloServer]:
    """A server answering "hello" on 127.0.0.1."""
    s = HelloServer()
    yield s
    s.close()


def call(host: ActivityHost, function: str, params: list[Any], egress: EgressPolicy | None = None, **limits: Any) -> ActivityOutcome:
    ffqn = Ffqn.parse(f"{BASIC}.{function}")
    limits = {**limits, "egress": egress} if egress is not None else limits
    return host.call(ffqn, host.loaded.info.functions()[ffqn], params, ActivityLimits(**limits))


def fetch(host: ActivityHost, url: str, egress: EgressPolicy | None = None, **limits: Any) -> ActivityOutcome | ActivityFailed:
    """What `fetch(url)` came to: its outcome, or its failure."""
    try:
        return call(host, "fetch", [url], egress, **limits)
    except ActivityFailed as failed:
        return failed


def test_a_request_to_a_loopback_server_is_refused_by_default_and_says_why(basic: ActivityHost, server: HelloServer) -> None:
    """The request never reaches the server; the refusal names host, port and the setting, on stderr and in a failure."""
    before = len(server.served)
    done = fetch(basic, server.url, EgressPolicy.allowing(None, grant=GRANT))
    refusal = (
        f"refused an outgoing request to 127.0.0.1:{server.port} (a loopback address): "
        f"list 127.0.0.1:{server.port} under allowed_hosts of component 'fetcher' in the deployment to allow it"
    )
    # act-basic catches the HTTP-request-denied error code and returns it as `err`: the refusal is still on stderr.
    assert isinstance(done, ActivityOutcome), done
    assert "HttpRequestDenied" in done.result["err"]
    assert done.output["stderr"] == f"[dolmen] {refusal}\n"
    assert len(server.served) == before


def test_the_default_limits_refuse_loopback_too(basic: ActivityHost, server: HelloServer) -> None:
    """`ActivityLimits()` without an egress policy applies the default rules."""
    done = fetch(basic, server.url)
    assert f"refused an outgoing request to 127.0.0.1:{server.port} (a loopback address)" in done.output.get("stderr", "")


@pytest.mark.parametrize("pattern", ["127.0.0.1:*", "127.0.0.1:{port}", "*:*"])
def test_a_listed_destination_is_fetched(basic: ActivityHost, server: HelloServer, pattern: str) -> None:
    """A pattern that lists the server lets the request through, and nothing is written about egress."""
    done = fetch(basic, server.url, EgressPolicy.allowing([pattern.format(port=server.port)]))
    assert isinstance(done, ActivityOutcome) and done.result == {"ok": "hello"}
    assert "[dolmen]" not in done.output.get("stderr", "")


def test_an_unlisted_port_of_a_listed_host_is_refused(basic: ActivityHost, server: HelloServer) -> None:
    """`127.0.0.1` alone means port 80 for http: the server's port is not allowed."""
    done = fetch(basic, server.url, EgressPolicy.allowing(["127.0.0.1", "api.example.com"], grant=GRANT))
    assert (
        f"refused an outgoing request to 127.0.0.1:{server.port} (not an allowed host; allowed: 127.0.0.1, api.example.com)"
        in done.output.get("stderr", "")
    )


def test_a_refusal_is_not_carried_into_the_next_call_of_a_reused_instance(basic: ActivityHost, server: HelloServer) -> None:
    """Each call starts with no refusals: a reused instance's next call writes none of the last call's."""
    refusing = EgressPolicy.allowing([], grant=GRANT)
    first = fetch(basic, server.url, refusing, reuse_instances=True)
    assert "[dolmen] refused" in first.output.get("stderr", "")
    second = call(basic, "double", [2], refusing, reuse_instances=True)
    assert second.result == 4 and "[dolmen]" not in second.output.get("stderr", "")
