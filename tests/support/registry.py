"""A real OCI registry for tests: Debian's `docker-registry` on loopback, plus a tampering proxy.

`RegistryForTests` writes a config (filesystem storage in its own folder,
optional htpasswd auth), starts `docker-registry serve CONFIG.yml` on a free
127.0.0.1 port, and waits until `/v2/` answers. `TamperingProxy` forwards
HTTP to a registry and can corrupt blobs or fail requests on the way back.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGISTRY_BINARY = "docker-registry"


def registry_binary() -> str | None:
    """Path of Debian's docker-registry, or None when it is not installed."""
    return shutil.which(REGISTRY_BINARY) or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").is_file() else None
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def htpasswd_line(username: str, password: str) -> str:
    """One bcrypt htpasswd entry, as docker-registry's htpasswd auth reads it."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{username}:{hashed}"


class RegistryForTests:
    """A real docker-registry with filesystem storage under `folder`; restartable on the same port."""

    def __init__(self, folder: Path, *, users: dict[str, str] | None = None) -> None:
        binary = registry_binary()
        if binary is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.binary = binary
        self.folder = folder
        self.storage = folder / "storage"
        self.port = free_port()
        self.users = users or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.config_path = folder / "config.yml"
        self.log_path = folder / "registry.log"
        self._write_config()

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the host part of an `oci://` reference."""
        return f"127.0.0.1:{self.port}"

    def ref(self, repository: str, tag: str = "latest") -> str:
        """`oci://127.0.0.1:PORT/REPOSITORY:TAG`."""
        return f"oci://{self.host}/{repository}:{tag}"

    def _write_config(self) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": "dolmen-tests"},
        }
        if self.users:
            htpasswd = self.folder / "htpasswd"
            htpasswd.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "dolmen-tests", "path": str(htpasswd)}}
        # JSON is YAML, and needs no quoting rules.
        self.config_path.write_text(json.dumps(config, indent=2))

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers `/v2/`."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "serve", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.process.returncode}: {self._log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/v2/")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host} within {timeout}s: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        hexpart = digest.removeprefix("sha256:")
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


Rewrite = Callable[[str, str, bytes], bytes]


class TamperingProxy:
    """An HTTP proxy in front of a registry that can alter answers.

    `rewrite(method, path, body) -> body` may change any response body;
    `fail_next(n, status)` answers the next `n` requests with `status` itself.
    """

    def __init__(self, upstream_port: int, rewrite: Rewrite | None = None) -> None:
        self.upstream_port = upstream_port
        self.rewrite = rewrite
        self.requests: list[tuple[str, str, int]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with `status` instead of forwarding them."""
        with self._lock:
            self._failures.extend([status] * count)

    def __enter__(self) -> TamperingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base class name
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                failure = proxy._take_failure()
                if failure is not None:
                    proxy.requests.append((self.command, self.path, failure))
                    self._answer(failure, {"Content-Type": "text/plain"}, b"injected failure")
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = f"127.0.0.1:{proxy.upstream_port}"
                conn.request(self.command, self.path, body=body or None, headers=headers)
                upstream = conn.getresponse()
                data = upstream.read()
                conn.close()
                if proxy.rewrite is not None and self.command == "GET":
                    data = proxy.rewrite(self.command, self.path, data)
                out = {k: v for k, v in upstream.getheaders() if k.lower() not in ("content-length", "connection", "transfer-encoding")}
                if "Location" in out:
                    out["Location"] = out["Location"].replace(f":{proxy.upstream_port}", f":{proxy.port}")
                proxy.requests.append((self.command, self.path, upstream.status))
                self._answer(upstream.status, out, data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return Handler
