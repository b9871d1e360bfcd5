"""What running an execution needs, shared by the runner, the workflow executor and external tasks: the components, the retry decisions.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
