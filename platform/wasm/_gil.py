"""Short wasmtime C calls keep the GIL.

wasmtime-py binds every C function through `ctypes.CDLL`, so each call
releases the GIL and takes it back. For the calls that run guest code
(`func_call`, instantiation, compilation) that is what lets runner threads
run guests in parallel. For the dozen accessor calls around each guest call
(function types, value conversion, resource handles, the epoch deadline) it
costs more than the call: under contention the releasing thread waits for the
GIL again behind other threads, for each of them (about 36 context switches
per fan-out child, three quarters of them GIL waits, `perf` on
`sched_switch`). Bound again through `ctypes.PyDLL` on the same library
handle, those calls hold the GIL; they never call back into Python or block.

`apply()` is idempotent and called with the other wasmtime-py patches (see
`_wasmtime_fixes`). Only the names `_SHORT` matches are rebound; every call
that may run guest code, compile, or free a store keeps releasing the GIL.
"""

from __future__ import annotations

import ctypes
import re

from ._wasmtime_version import check_wasmtime_version, installed_wasmtime

# The wasmtime-py release whose ctypes bindings this module rebinds: checked before they are imported.
WRITTEN_FOR_WASMTIME = "50.0.1"
check_wasmtime_version(installed_wasmtime(), WRITTEN_FOR_WASMTIME, "platform/wasm/_gil.py")

from wasmtime import _bindings, _ffi  # pyright: ignore[reportPrivateUsage]

# Pure accessors and conversions of values, types and handles (the C API's own wording).
_SHORT = re.compile(
    r"^_(?:"
    r"wasmtime_component_func_type(?:_\w+)?"
    r"|wasmtime_component_val(?:tuple|record|list|flags)?_(?:new|new_uninit|delete|copy)\w*"
    r"|wasmtime_component_resource_(?:host_(?:new|rep|owned|delete|resource_id)|any_(?:to_host|delete|clone|type|owned))"
    r"|wasmtime_component_\w+_type_\w+"
    r"|wasmtime_component_(?:instance_get_\w+|export_index_delete)"
    r"|wasmtime_context_set_epoch_deadline"
    r"|wasmtime_engine_increment_epoch"
    r"|wasm_byte_vec_\w+|wasm_name_\w+"
    r"|wasmtime_error_(?:message|delete)"
    r")$"
)

_applied = False


def apply() -> int:
    """Rebind the short calls to hold the GIL; returns how many were rebound (0 once applied)."""
    global _applied
    if _applied:
        return 0
    # getattr: neither name is in wasmtime's or ctypes' type stubs, so pyright refuses plain access.
    holding = ctypes.PyDLL(None, handle=getattr(_ffi.dll, "_handle"))  # noqa: B009
    c_function = getattr(ctypes, "_CFuncPtr")  # noqa: B009
    count = 0
    for name, value in list(vars(_bindings).items()):
        if not isinstance(value, c_function) or not _SHORT.match(name):
            continue
        rebound = getattr(holding, name[1:])
        rebound.restype = value.restype
        rebound.argtypes = value.argtypes
        setattr(_bindings, name, rebound)
        count += 1
    _applied = True
    return count
