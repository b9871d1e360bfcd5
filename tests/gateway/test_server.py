"""`platform gateway` in its own process: what it exits with when it cannot start."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_platform

REFUSED_PORT = "redis://127.0.0.1:1"  # nothing listens there: the gateway serves 503s, it does not stop at it


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on for the test's length."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_port_in_use_is_a_configuration_error_not_a_not_found(taken_port: int, tmp_path: Path) -> None:
    """The gateway exits 2 naming the address and --port, not uvicorn's startup-failure 3 (the CLI's "not found")."""
    proc = run_platform(
        "--data-dir", str(tmp_path), "--redis", REFUSED_PORT, "gateway", "--port", str(taken_port), timeout=90
    )
    assert proc.returncode == 2, proc.stderr
    assert f"error: the gateway cannot start on 127.0.0.1:{taken_port}" in proc.stderr, proc.stderr
    assert "--port PORT" in proc.stderr and "address already in use" in proc.stderr, proc.stderr
