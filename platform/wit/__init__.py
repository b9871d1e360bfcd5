"""WIT types and the value codec between canonical JSON and wasm values.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .types import FunctionType, WitType, type_from_json
    from .codec import canonical, canonical_params, from_wasm, params_to_wasm, to_wasm

# Each exported name -> the module that defines it.
_EXPORTS = {
    "FunctionType": "types",
    "WitType": "types",
    "canonical": "codec",
    "canonical_params": "codec",
    "from_wasm": "codec",
    "params_to_wasm": "codec",
    "to_wasm": "codec",
    "type_from_json": "types",
}

__all__ = [
    "FunctionType",
    "WitType",
    "canonical",
    "canonical_params",
    "from_wasm",
    "params_to_wasm",
    "to_wasm",
    "type_from_json",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
