"""The runner process: reads the queues and runs activities and workflows on a pool of threads.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
