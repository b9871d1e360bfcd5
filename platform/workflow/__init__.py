"""The workflow replayer: one run (`RunContext`) matched against its log (`Replay`), executed live or verified.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .run_context import RunContext
    from .driver import ContinueAsNew, Driver, ReachedEndOfLog, ReadOnlyDriver, Target, Unload
    from .replay import Replay, Request
    from .executor import WorkflowExecutor
    from .live_driver import InlineRunner, Spawner
    from .verify import Verdict

# Each exported name -> the module that defines it.
_EXPORTS = {
    "ContinueAsNew": "driver",
    "Driver": "driver",
    "InlineRunner": "live_driver",
    "ReachedEndOfLog": "driver",
    "ReadOnlyDriver": "driver",
    "Replay": "replay",
    "Request": "replay",
    "RunContext": "run_context",
    "Spawner": "live_driver",
    "Target": "driver",
    "Unload": "driver",
    "Verdict": "verify",
    "WorkflowExecutor": "executor",
}

__all__ = [
    "ContinueAsNew",
    "Driver",
    "InlineRunner",
    "ReachedEndOfLog",
    "ReadOnlyDriver",
    "Replay",
    "Request",
    "RunContext",
    "Spawner",
    "Target",
    "Unload",
    "Verdict",
    "WorkflowExecutor",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
