"""Times as Dolmen's JSON answers write them (HTTP API, `--json` output, external workers)."""

from __future__ import annotations

import datetime as _dt

__all__ = ["iso_ms"]


def iso_ms(ms: int) -> str:
    """Milliseconds since the Unix epoch as RFC 3339 in UTC with milliseconds: `2025-01-31T12:00:00.000Z`."""
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
