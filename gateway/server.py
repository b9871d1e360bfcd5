"""Serve the gateway app with uvicorn."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..platform.errors import ConfigError, StoreUnavailableError
from ..platform.store import shards as sharding
from ..platform.store.connection import close, connect, wait_for_store
from ..platform.store.urls import seed_urls
from .app import create_app
from .settings import GatewaySettings, Token, parse_tokens

try:  # C parser and event loop when installed (Linux/macOS wheels), else the pure-Python ones
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _FastProtocol

    import httptools  # noqa: F401  # the protocol module imports without it; using it needs it
except ImportError:  # pragma: no cover - depends on the platform's wheels
    _FastProtocol = None  # type: ignore[assignment,misc]
try:
    import uvloop  # noqa: F401

    LOOP = "uvloop"
except ImportError:  # pragma: no cover - depends on the platform's wheels
    LOOP = "asyncio"

__all__ = ["KEEP_ALIVE_S", "GatewaySettings", "Token", "parse_tokens", "serve_gateway", "uvicorn_options"]

# Seconds an idle keep-alive connection stays open. Longer than the idle
# timeouts of the usual clients and proxies (httpx and Node 5 s, nginx and AWS
# load balancers 60 s), so that the client, not the gateway, closes an idle
# connection: a gateway closing one as the client reuses it makes the client's
# request fail with a reset (uvicorn's default is 5 s, the same as httpx's).
KEEP_ALIVE_S = 75


class CoalescingTransport:
    """A transport that sends what one loop tick wrote as one write.

    uvicorn writes a response's head and body separately: two sends, and two
    wake-ups of the client, per response. Joined, a small response is one.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._chunks: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        """Keep `data` to send with whatever else this loop tick writes."""
        if not self._chunks:
            self._loop.call_soon(self.flush)
        self._chunks.append(data)

    def flush(self) -> None:
        """Send what was kept, as one write (nothing once the transport is closing)."""
        if self._chunks:
            data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks = []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        """Send what was kept, then close the transport."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send what was kept, then close the write side."""
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _coalescing(base: type[Any]) -> type[asyncio.Protocol]:
    class Protocol(base):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport))

    Protocol.__name__ = f"Coalescing{base.__name__}"
    return Protocol


HTTP_PROTOCOL: type[asyncio.Protocol] = _coalescing(_FastProtocol or H11Protocol)


def uvicorn_options() -> dict[str, Any]:
    """uvicorn's settings for a gateway: the C loop and parser when installed, one send per response.

    Keyword arguments of `uvicorn.run`/`uvicorn.Config`; times in seconds (`KEEP_ALIVE_S` idle keep-alive).
    """
    return {
        "log_level": "warning",
        "access_log": False,
        "loop": LOOP,
        "http": HTTP_PROTOCOL,
        # Long-polls and event streams are bounded by the gateway's own limits.
        "timeout_graceful_shutdown": 5,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


def _check_shards(redis_url: str) -> None:
    """Stop at start, as runners and schedulers do, on a `DOLMEN_SHARDS` other than the store's (`ConfigError`).

    A store that does not answer yet is checked at its first use instead.
    """
    client = connect(redis_url)
    try:
        sharding.load(client)
    except StoreUnavailableError:
        pass
    finally:
        close(client)


def serve_gateway(settings: GatewaySettings) -> None:
    """Run uvicorn in the foreground until SIGINT/SIGTERM.

    Given several nodes (a cluster's: `redis://A,B`), it starts once one of them
    answers (`wait_for_store`), to connect as a cluster client; given one, it
    serves at once, answering 503 while the store is down. Raises `ConfigError`
    for a malformed URL, a `DOLMEN_SHARDS` other than the store's, or a server
    that cannot start (its address in use: uvicorn logged why), and
    `StoreAccessError` when the store refuses this process.
    """
    if len(seed_urls(settings.redis_url)) > 1:
        wait_for_store(settings.redis_url, timeout_s=float("inf"))
    _check_shards(settings.redis_url)
    try:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, **uvicorn_options())
    except SystemExit as exc:
        # uvicorn exits with its STARTUP_FAILURE, 3, which the CLI's exit statuses read as "not found".
        if exc.code != STARTUP_FAILURE:
            raise
        raise ConfigError(
            f"the gateway cannot start on {settings.host}:{settings.port} (the error above says why, e.g. the "
            "address is already in use); pick a free port with --port PORT, or stop what listens there"
        ) from None
