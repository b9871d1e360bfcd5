"""Serve the gateway app with uvicorn."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import GatewaySettings, Token, parse_tokens

__all__ = ["GatewaySettings", "Token", "parse_tokens", "serve_gateway"]


def serve_gateway(settings: GatewaySettings) -> None:
    """Run uvicorn in the foreground until SIGINT/SIGTERM."""
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        # Long-polls and event streams are bounded by the gateway's own limits.
        timeout_graceful_shutdown=5,
    )
