"""Transport choices: plain HTTP only where allowed, and a short backoff."""

from __future__ import annotations

import pytest

from dolmen.registry.client import RegistryClient
from dolmen.registry.transport import RetryPolicy


@pytest.mark.parametrize(
    ("host", "insecure", "url"),
    [("127.0.0.1:5000", False, "http://127.0.0.1:5000"), ("localhost:5000", False, "http://localhost:5000"),
     ("[::1]:5000", False, "http://[::1]:5000"), ("ghcr.io", False, "https://ghcr.io"),
     ("registry.lan:5000", True, "http://registry.lan:5000")],
)  # fmt: skip
def test_plain_http_only_for_loopback_or_insecure(host: str, insecure: bool, url: str) -> None:
    """Loopback hosts and --insecure use http://; every other registry uses https://."""
    with RegistryClient(host, insecure=insecure) as client:
        assert client.base_url == url


def test_backoff_doubles_up_to_a_cap() -> None:
    """Retry delays grow exponentially from the initial delay and stop at the cap."""
    policy = RetryPolicy(attempts=6, initial_delay=0.2, max_delay=1.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]
