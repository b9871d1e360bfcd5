"""Instantiate a workflow component in a deterministic sandbox and call its export."""

from __future__ import annotations

import threading
from typing import Any

from wasmtime import Store, WasiConfig, WasmtimeError
from wasmtime import _ffi as wasmtime_ffi

from ..errors import TrapError
from ..ffqn import Ffqn
from ..wasm.engine import deadline_ticks
from ..wasm.guest import call_function, find_function
from ..wasm.loader import LoadedComponent
from ..wasm.output import ReleaseTracker
from .context import RunContext
from .host import WorkflowLinker, bound


class WorkflowSandbox:
    """Workflow linkers by digest; `invoke` runs one call of a workflow export."""

    def __init__(self) -> None:
        self._linkers: dict[str, WorkflowLinker] = {}
        self._lock = threading.Lock()

    def linker(self, loaded: LoadedComponent) -> WorkflowLinker:
        with self._lock:
            linker = self._linkers.get(loaded.digest)
            if linker is None:
                linker = WorkflowLinker(loaded)
                self._linkers[loaded.digest] = linker
            return linker

    def invoke(
        self,
        loaded: LoadedComponent,
        ctx: RunContext,
        *,
        timeout_ms: int | None,
        memory_bytes: int | None,
    ) -> Any:
        """Call the execution's function with the params of its `created` event; return the JSON value."""
        ffqn = Ffqn.parse(ctx.ffqn)
        fn = loaded.info.functions().get(ffqn)
        if fn is None:
            raise TrapError(f"component {loaded.digest} does not export {ffqn}")
        linker = self.linker(loaded)
        store = Store(loaded.engine)
        released = ReleaseTracker()
        try:
            wasi = WasiConfig()
            wasi.stdout_custom = released.track(_guest_output(ctx, "stdout"))
            wasi.stderr_custom = released.track(_guest_output(ctx, "stderr"))
            store.set_wasi(wasi)
            if memory_bytes is not None:
                store.set_limits(memory_size=memory_bytes)
            ticks = deadline_ticks(timeout_ms)
            store.set_epoch_deadline(ticks)
            context = store._context()  # pyright: ignore[reportPrivateUsage]

            def refresh_deadline() -> None:
                # Time spent waiting for responses is not guest CPU time.
                wasmtime_ffi.wasmtime_context_set_epoch_deadline(context, ticks)

            ctx.after_wait = refresh_deadline
            with bound(ctx):
                try:
                    instance = linker.linker.instantiate(store, loaded.component)
                except WasmtimeError as exc:
                    raise TrapError(f"instantiation of workflow {loaded.digest} failed: {str(exc).splitlines()[0]}") from None
                func = find_function(store, instance, ffqn)
                return call_function(store, func, fn, ctx.replay.params, timeout_ms=timeout_ms)
        finally:
            ctx.after_wait = None
            # Free the store now (an exception's traceback would keep it alive) and
            # wait until wasmtime released the output callbacks: see wasm/output.py.
            store.close()
            released.wait()


def _guest_output(ctx: RunContext, stream: str) -> Any:
    def write(data: Any) -> None:
        text = bytes(data).decode("utf-8", "replace").rstrip("\n")
        if text:
            ctx.emit("info", f"[{stream}] {text}")

    return write
