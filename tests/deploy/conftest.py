"""Fixtures for deployment tests: component files next to YAML files, a gated HTTP server, the CLI."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dolmen.platform.store.connection import connect
from dolmen.platform.store.deployments import DeploymentStore
from tests.support.guests import DATA_DIR, build_guest

# name in the test's build folder -> (guest folder, world)
GUESTS = {
    "act.wasm": ("act-basic", "activities"),
    "wf1.wasm": ("wf-basic", "workflows"),
    "wf2.wasm": ("wf-next", "workflows"),
    "wfv2.wasm": ("wf-v2", "workflows"),
}
F = "testing:wf/flows@1.0.0"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with build/act.wasm, wf1.wasm (wf-basic), wf2.wasm (wf-next) and wfv2.wasm (wf-v2)."""
    build = tmp_path / "build"
    build.mkdir()
    for name, (guest, world) in GUESTS.items():
        shutil.copyfile(build_guest(guest, world), build / name)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    """Write a deployment file and return its path."""
    path = folder / name
    path.write_text(text)
    return path


def deployment(workflow: str = "wf1", *, extra: str = "", wf_settings: str = "blocking: unload", name: str = "test") -> str:
    """YAML deploying act-basic and the given workflow build, with `extra` components appended.

    act-basic fetches from the tests' servers on loopback, so it lists them in `allowed_hosts`.
    """
    return (
        f"name: {name}\n"
        "components:\n"
        "  - name: act\n    kind: activity\n    source: ./build/act.wasm\n    timeout: 120s\n"
        '    allowed_hosts: ["127.0.0.1:*"]\n'
        f"  - name: wf\n    kind: workflow\n    source: ./build/{workflow}.wasm\n    {wf_settings}\n"
        f"{extra}"
    )


@dataclass
class Cli:
    """`platform` run as a real process against the test Valkey and the shared compiled cache."""

    redis_url: str

    def __call__(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOLMEN_")}
        return subprocess.run(
            [sys.executable, "-m", "dolmen.platform.cli.main", "--redis", self.redis_url, "--data-dir", str(DATA_DIR), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )

    def json(self, *args: str, timeout: float = 120.0) -> Any:
        done = self("--json", *args, timeout=timeout)
        assert done.returncode == 0, f"platform {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return json.loads(done.stdout)


@pytest.fixture
def cli(redis_url: str) -> Cli:
    """Run `platform ...` in a subprocess."""
    return Cli(redis_url)


def active_revision(redis_url: str) -> tuple[int | None, list[int]]:
    """The active revision number and every stored one."""
    client_ = connect(redis_url)
    try:
        store = DeploymentStore(client_)
        return store.active_number(), store.numbers()
    finally:
        client_.close()


@dataclass
class Gate:
    """An HTTP server that holds requests for paths containing "hold" until `open()`; others answer at once."""

    waiting: int = 0
    served: list[str] = field(default_factory=list)
    _open: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def open(self) -> None:
        self._open.set()

    def start(self) -> None:
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class name
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                held = "hold" in self.path
                if held:
                    with gate._lock:
                        gate.waiting += 1
                    gate._open.wait(120)
                body = f"page {self.path.lstrip('/')}".encode()
                with gate._lock:
                    gate.waiting -= int(held)
                    gate.served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._open.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def gate() -> Iterator[Gate]:
    """A gated HTTP server, closed until the test opens it."""
    server = Gate()
    server.start()
    yield server
    server.stop()
