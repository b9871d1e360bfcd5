"""The chaos run's own servers: a Valkey only it can use, and an HTTP server that fails on purpose."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections import Counter
from pathlib import Path

from tests.support.servers import ValkeyForTests, ephemeral_port


class DurableValkey(ValkeyForTests):
    """ValkeyForTests that nothing else on the machine can use, with the append-only file fsynced
    at every write (a restart loses nothing acknowledged).

    It restarts on the port it had: should another test session's server take that port while this
    one is down, the runners must not work on a server that is not theirs (with their own cached
    deployment). So the port comes from the ephemeral range, chosen once, and only this server's own
    ACL user may do more than PING.
    """

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, ephemeral_port(), password=os.urandom(12).hex(), appendfsync="always")

    def restart(self, down_s: float) -> None:
        """A clean stop (SIGTERM: the AOF is flushed), `down_s` of nothing, then a start on the same port."""
        self.stop()
        time.sleep(down_s)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.start()
                return
            except Exception:
                self.server = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


class FlakyServer:
    """HTTP on loopback: `/flaky/KEY/N` answers 500 to the first N requests for KEY, then 200 `ok KEY`."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                _, _, key, failures = self.path.split("/")
                with outer.lock:
                    outer.hits[key] += 1
                    hit = outer.hits[key]
                ok = hit > int(failures)
                body = (f"ok {key}" if ok else f"not yet ({hit})").encode()
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="flaky-http", daemon=True).start()

    def url(self, key: str, failures: int) -> str:
        return f"http://127.0.0.1:{self.port}/flaky/{key}/{failures}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

