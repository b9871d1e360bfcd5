"""External workers: executions of `kind: external` functions, claimed and settled over HTTP by workers in any language.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .tasks import MAX_CLAIM, ExternalTasks, Settled, Task, check_claimed, lease_ms_of
    from .tokens import TaskToken

# Each exported name -> the module that defines it.
_EXPORTS = {
    "MAX_CLAIM": "tasks",
    "ExternalTasks": "tasks",
    "Settled": "tasks",
    "Task": "tasks",
    "TaskToken": "tokens",
    "check_claimed": "tasks",
    "lease_ms_of": "tasks",
}

__all__ = [
    "MAX_CLAIM",
    "ExternalTasks",
    "Settled",
    "Task",
    "TaskToken",
    "check_claimed",
    "lease_ms_of",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
