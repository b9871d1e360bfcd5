"""Idle keep-alive connections: the client closes them, not the gateway.

A server that closes an idle connection after 5 s (uvicorn's default) races
clients whose own idle limit is 5 s too (httpx): a request sent on the
connection as the server closes it fails with a reset, which a client cannot
safely retry for a POST. The gateway keeps idle connections `KEEP_ALIVE_S`.
"""

from __future__ import annotations

import socket
import time

from dolmen.gateway.server import KEEP_ALIVE_S
from tests.gateway.helpers import GatewayThread

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: keep-alive\r\n\r\n"


def read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body, read whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the gateway closed the connection mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the gateway closed the connection mid-body"
        body += chunk
    return head


def test_keep_alive_outlasts_the_usual_client_idle_limits() -> None:
    """Longer than httpx's and Node's 5 s and the usual load balancers' 60 s."""
    assert KEEP_ALIVE_S > 60


def test_a_connection_idle_longer_than_a_clients_5_s_limit_is_still_served(gateway: GatewayThread) -> None:
    """After 6 s idle the connection is open (no FIN waiting) and answers the next request."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(6)
        sock.setblocking(False)
        try:
            peeked = sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            peeked = None
        assert peeked is None, "the gateway closed an idle connection a client could still reuse"
        sock.setblocking(True)
        sock.settimeout(30)
        sock.sendall(REQUEST)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
