"""What running an execution needs, shared by the runner, the workflow executor and external tasks: the components, the retry decisions.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .components import ComponentProvider, spare_instances
    from .retry import Finish, RetryAt, after_failure, after_lock, after_return

# Each exported name -> the module that defines it.
_EXPORTS = {
    "ComponentProvider": "components",
    "Finish": "retry",
    "RetryAt": "retry",
    "after_failure": "retry",
    "after_lock": "retry",
    "after_return": "retry",
    "spare_instances": "components",
}

__all__ = [
    "ComponentProvider",
    "Finish",
    "RetryAt",
    "after_failure",
    "after_lock",
    "after_return",
    "spare_instances",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
