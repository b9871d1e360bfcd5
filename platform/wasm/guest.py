"""Calling a guest export: find the function, convert values, translate failures.

This is the only place that turns `WasmtimeError`s from a guest call into
Dolmen's execution errors. Exceptions raised by host functions (for example
the workflow host's request to unload an instance) pass through unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from wasmtime import ExitTrap, Store, WasmtimeError
from wasmtime.component import Func, Instance

from ..errors import ComponentError, ExecutionTimeoutError, TrapError, ValueTooLargeError
from ..ffqn import Ffqn
from ..wit.codec import from_wasm, to_wasm
from ..wit.limits import DEFAULT_MAX_VALUE_BYTES, FUEL_EXHAUSTED, check_value, copy_budget_message
from ..wit.types import FunctionType
from . import _wasmtime_fixes

_wasmtime_fixes.apply()  # see that module: variant lowering, per-thread host exceptions, fast list<u8>

_BACKTRACE = re.compile(r"^\s*\d+: 0x[0-9a-f]+ - (?P<frame>.*)$")
_ADAPTER = re.compile(r"!adapter (?P<name>\S+)$")


def find_function(store: Store, instance: Instance, ffqn: Ffqn) -> Func:
    """The exported function `ffqn` of an instance; `ComponentError` when its interface or function is not exported."""
    iface_index = instance.get_export_index(store, str(ffqn.interface))
    if iface_index is None:
        raise ComponentError(f"the component does not export interface {ffqn.interface}")
    fn_index = instance.get_export_index(store, ffqn.function, iface_index)
    func = None if fn_index is None else instance.get_func(store, fn_index)
    if func is None:
        raise ComponentError(f"interface {ffqn.interface} has no function '{ffqn.function}'")
    return func


def call_function(
    store: Store,
    func: Func,
    fn: FunctionType,
    params_json: list[Any],
    *,
    timeout_ms: int | None = None,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
) -> Any:
    """Call `func` with canonical JSON params (one per parameter of `fn`); return the JSON result.

    Raises `TrapError`, `ExecutionTimeoutError` when the epoch deadline hit,
    or `ValueTooLargeError` for a result over `max_value_bytes` of JSON (or
    one over wasmtime's copy budget, see `wit.limits`); `InvalidValueError`
    for params that do not fit their types.
    """
    args = [to_wasm(v, t, f"params[{i}]") for i, (v, (_, t)) in enumerate(zip(params_json, fn.params))]
    try:
        raw = func(store, *args)
        func.post_return(store)
    except WasmtimeError as exc:
        raise translate_trap(exc, timeout_ms, max_value_bytes) from None
    if fn.result is None:
        return None
    result = from_wasm(raw, fn.result)
    check_value(result, max_value_bytes, "the result")
    return result


def translate_trap(
    exc: WasmtimeError, timeout_ms: int | None = None, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
) -> Exception:
    """A guest failure as a Dolmen execution error with a readable message.

    `ExecutionTimeoutError` for an epoch interrupt, `ValueTooLargeError` for
    wasmtime's exhausted copy budget, `TrapError` for anything else (exit included).
    """
    text = str(exc)
    if isinstance(exc, ExitTrap):
        return TrapError(f"the guest called exit({exc.code})")
    if "wasm trap: interrupt" in text:
        limit = f" of {timeout_ms} ms" if timeout_ms is not None else ""
        return ExecutionTimeoutError(
            f"the guest ran past its time limit{limit} and was interrupted; "
            "raise `timeout` in the deployment if the work is legitimately slow"
        )
    if FUEL_EXHAUSTED in text:
        # Not a trap of the guest's own: the same value runs out of the budget again, so never retried.
        return ValueTooLargeError(copy_budget_message(_oversized_value(text), max_value_bytes))
    return TrapError(summarize_trap(text))


def _oversized_value(text: str) -> str:
    """Which value ran out of wasmtime's copy budget: the result, or (with guest frames) a host call's params."""
    frames = [m["frame"] for m in (_BACKTRACE.match(line) for line in text.splitlines()) if m]
    if not frames:
        return "the result"
    # wasmtime names the trampoline of the import being called `adapter NAME`.
    called = next((found["name"] for found in map(_ADAPTER.search, frames) if found), None)
    return f"the params the guest passed to `{called}`" if called else "a value the guest passed to a host call"


def summarize_trap(text: str) -> str:
    """One paragraph from wasmtime's multi-line trap report: cause and innermost guest frames."""
    lines = text.strip().splitlines()
    cause = ""
    for i, line in enumerate(lines):
        if line.strip() == "Caused by:":
            cause = " ".join(part.strip() for part in lines[i + 1 :] if part.strip())
            break
    frames = [m["frame"] for m in (_BACKTRACE.match(line) for line in lines) if m]
    # The outermost frame is the export that was running; wasmtime names the
    # module of a component's own export `<unknown>`.
    where = f" in {frames[-1].removeprefix('<unknown>!')}" if frames else ""
    headline = cause or (lines[0] if lines else "unknown trap")
    if "unreachable" in headline and any("panic" in f or "abort" in f for f in frames):
        headline = "the guest panicked or aborted (wasm `unreachable` executed)"
    return f"{headline}{where}"
