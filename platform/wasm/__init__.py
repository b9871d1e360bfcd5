"""The wasm host: components compiled and cached by digest, instantiated, and run with limits.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .cache import ComponentCache, sha256_digest
    from .engine import EngineSettings, EpochTicker
    from .loader import ComponentLoader, LoadedComponent
    from .activity_host import ActivityFailed, ActivityHost, ActivityLimits, ActivityOutcome

# Each exported name -> the module that defines it.
_EXPORTS = {
    "ActivityFailed": "activity_host",
    "ActivityHost": "activity_host",
    "ActivityLimits": "activity_host",
    "ActivityOutcome": "activity_host",
    "ComponentCache": "cache",
    "ComponentLoader": "loader",
    "EngineSettings": "engine",
    "EpochTicker": "engine",
    "LoadedComponent": "loader",
    "sha256_digest": "cache",
}

__all__ = [
    "ActivityFailed",
    "ActivityHost",
    "ActivityLimits",
    "ActivityOutcome",
    "ComponentCache",
    "ComponentLoader",
    "EngineSettings",
    "EpochTicker",
    "LoadedComponent",
    "sha256_digest",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
