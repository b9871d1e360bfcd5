"""The wasm host: components compiled and cached by digest, instantiated, and run with limits.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
