"""The runner process: reads the queues and runs activities and workflows on a pool of threads.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .process import Runner, serve_runner
    from .settings import RunnerSettings

# Each exported name -> the module that defines it.
_EXPORTS = {
    "Runner": "process",
    "RunnerSettings": "settings",
    "serve_runner": "process",
}

__all__ = [
    "Runner",
    "RunnerSettings",
    "serve_runner",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
