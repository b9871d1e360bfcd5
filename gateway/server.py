"""Serve the gateway app with uvicorn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import uvicorn

from .app import create_app


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    redis_url: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8400


def serve_gateway(settings: GatewaySettings) -> None:
    """Run uvicorn in the foreground until SIGINT/SIGTERM."""
    app = create_app(settings.redis_url)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
