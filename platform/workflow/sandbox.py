"""Instantiate a workflow component in a deterministic sandbox and call its export.

Every run gets an instance nobody used before (a workflow replays from its
log, so nothing may carry over); spares may be made ahead of time by a
background thread (see `wasm.instances`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wasmtime import Store, WasiConfig, WasmtimeError
from wasmtime import _ffi as wasmtime_ffi

from ..errors import TrapError
from ..ffqn import Ffqn
from ..wasm.engine import deadline_ticks
from ..wasm.guest import call_function
from ..wasm.instances import InstanceSlot, OutputSwitch, Ready
from ..wasm.loader import LoadedComponent
from ..wasm.output import ReleaseTracker
from .context import RunContext
from .host import WorkflowLinker, bound


class WorkflowSandbox:
    """Workflow linkers and spare instances by digest; `invoke` runs one call of a workflow export.

    `spares` fresh instances per component and memory limit are kept ready
    (0 instantiates on the caller's thread only, as a one-off replay does).
    """

    def __init__(self, spares: int = 0) -> None:
        self._linkers: dict[str, WorkflowLinker] = {}
        self._slots: dict[tuple[str, int | None], InstanceSlot] = {}
        self._spares = spares
        self._background: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def linker(self, loaded: LoadedComponent) -> WorkflowLinker:
        with self._lock:
            linker = self._linkers.get(loaded.digest)
            if linker is None:
                linker = WorkflowLinker(loaded)
                self._linkers[loaded.digest] = linker
            return linker

    def close(self) -> None:
        """Free the spare instances."""
        with self._lock:
            slots = list(self._slots.values())
            background, self._background = self._background, None
        for slot in slots:
            slot.close()
        if background is not None:
            background.shutdown(wait=True)

    def _slot(self, loaded: LoadedComponent, linker: WorkflowLinker, memory_bytes: int | None) -> InstanceSlot:
        key = (loaded.digest, memory_bytes)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                if self._background is None:
                    self._background = ThreadPoolExecutor(1, thread_name_prefix="dolmen-wf-instances")
                slot = self._slots[key] = InstanceSlot(
                    lambda: _instantiate(loaded, linker, memory_bytes), self._background, spares=self._spares
                )
            return slot

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
        slot = self._slot(loaded, linker, memory_bytes)
        ticks = deadline_ticks(timeout_ms)
        with bound(ctx):
            try:
                ready = slot.take()
            except WasmtimeError as exc:
                raise TrapError(f"instantiation of workflow {loaded.digest} failed: {str(exc).splitlines()[0]}") from None
        ready.output.target = _guest_output(ctx)
        ready.store.set_epoch_deadline(ticks)
        context = ready.store._context()  # pyright: ignore[reportPrivateUsage]

        def refresh_deadline() -> None:
            # Time spent waiting for responses is not guest CPU time.
            wasmtime_ffi.wasmtime_context_set_epoch_deadline(context, ticks)

        ctx.after_wait = refresh_deadline
        try:
            with bound(ctx):
                return call_function(ready.store, ready.func(ffqn), fn, ctx.replay.params, timeout_ms=timeout_ms)
        finally:
            ctx.after_wait = None
            # Never reused (its last output still reaches `ctx` while it closes).
            slot.give_back(ready, ok=False)


def _instantiate(loaded: LoadedComponent, linker: WorkflowLinker, memory_bytes: int | None) -> Ready:
    store = Store(loaded.engine)
    released = ReleaseTracker()
    output = OutputSwitch(released)
    try:
        wasi = WasiConfig()
        output.attach(wasi)
        store.set_wasi(wasi)
        if memory_bytes is not None:
            store.set_limits(memory_size=memory_bytes)
        store.set_epoch_deadline(deadline_ticks(None))
        instance = linker.linker.instantiate(store, loaded.component)
    except BaseException:
        store.close()
        released.wait()
        raise
    return Ready(store, instance, output, released)


def _guest_output(ctx: RunContext) -> Any:
    def write(stream: str, data: bytes) -> None:
        text = data.decode("utf-8", "replace").rstrip("\n")
        if text:
            ctx.emit("info", f"[{stream}] {text}")

    return write
