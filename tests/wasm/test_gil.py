"""Short wasmtime C calls hold the GIL; every call that may run guest code still releases it (see `wasm._gil`)."""

from __future__ import annotations

import threading

from wasmtime import _bindings  # pyright: ignore[reportPrivateUsage]

from dolmen.platform.wasm import _gil, _wasmtime_fixes

# ctypes' flag for functions called with the GIL held (`PyDLL`); Modules/_ctypes/ctypes.h.
FUNCFLAG_PYTHONAPI = 0x4


def holds_gil(name: str) -> bool:
    return bool(getattr(_bindings, name)._flags_ & FUNCFLAG_PYTHONAPI)


def test_the_accessors_around_a_guest_call_hold_the_gil() -> None:
    _wasmtime_fixes.apply()
    hot = [
        "_wasmtime_component_func_type", "_wasmtime_component_func_type_param_count",
        "_wasmtime_component_func_type_param_nth", "_wasmtime_component_func_type_result",
        "_wasmtime_component_func_type_delete", "_wasmtime_component_val_new", "_wasmtime_component_val_delete",
        "_wasmtime_component_valtuple_new_uninit", "_wasmtime_component_resource_host_rep",
        "_wasmtime_component_resource_any_to_host", "_wasmtime_context_set_epoch_deadline", "_wasm_byte_vec_new_uninitialized",
    ]  # fmt: skip
    assert [name for name in hot if not holds_gil(name)] == []
    assert _gil.apply() == 0, "applied once"


def test_calls_that_run_guest_code_compile_or_free_a_store_release_it() -> None:
    _wasmtime_fixes.apply()
    releasing = [
        "_wasmtime_component_func_call", "_wasmtime_component_func_post_return", "_wasmtime_component_linker_instantiate",
        "_wasmtime_component_new", "_wasmtime_component_deserialize_file", "_wasmtime_store_delete",
        "_wasmtime_component_resource_any_drop", "_wasmtime_func_call", "_wasmtime_module_new",
    ]  # fmt: skip
    assert [name for name in releasing if holds_gil(name)] == []


def test_rebound_calls_still_work_from_many_threads() -> None:
    """wasmtime's error messages, read and freed through rebound calls, from eight threads at once."""
    _wasmtime_fixes.apply()
    from wasmtime import WasmtimeError, wat2wasm

    failures: list[str] = []

    def parse() -> None:
        for _ in range(50):
            try:
                wat2wasm("(module (func (foo)))")
            except WasmtimeError as exc:
                if not str(exc).startswith("unknown operator or unexpected token"):
                    failures.append(str(exc))
            else:
                failures.append("no error")

    threads = [threading.Thread(target=parse) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert holds_gil("_wasmtime_error_message") and holds_gil("_wasmtime_error_delete")
    assert not any(thread.is_alive() for thread in threads) and failures == []
