"""Instantiate a workflow component in a deterministic sandbox and call its export.

By default every run gets an instance nobody used before (a workflow replays
from its log, so nothing may carry over); spares may be made ahead of time by a
background thread (see `wasm.instances`). A deployment may opt into reuse
(`instances: reuse`): an instance whose run returned normally serves the next
run of any execution, so the guest's own globals (Python's `random` state
included) carry over, and a replay on another instance diverges if the code
reads them (see README "Reused workflow instances").

A run's stdout and stderr go to the runner's log lines, and the end of its
stderr is kept to explain a trap: the failure names the Python exception and
carries its traceback. Neither reaches the guest nor the event log's requests,
so output never changes what a replay does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from wasmtime import Store, WasiConfig, WasmtimeError
from wasmtime import _ffi as wasmtime_ffi

from ..errors import ExecutionTimeoutError, TrapError
from ..ffqn import Ffqn
from ..wasm.engine import deadline_ticks
from ..wasm.guest import call_function
from ..wasm.instances import InstanceSlot, OutputSwitch, Ready
from ..wasm.loader import LoadedComponent
from ..wasm.output import CapturedOutput, StreamDecoder, python_traceback, stderr_summary
from .run_context import RunContext
from .host import WorkflowLinker, bound


class WorkflowSandbox:
    """Workflow linkers and spare instances by digest; `invoke` runs one call of a workflow export.

    `spares` fresh instances per component and memory limit are kept ready
    (0 instantiates on the caller's thread only, as a one-off replay does).
    """

    def __init__(self, spares: int = 0) -> None:
        self._linkers: dict[str, WorkflowLinker] = {}
        self._slots: dict[tuple[str, int | None, int], InstanceSlot] = {}
        self._spares = spares
        self._background: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def linker(self, loaded: LoadedComponent) -> WorkflowLinker:
        """The component's linker, made at first use (`ComponentError` as `WorkflowLinker`)."""
        with self._lock:
            linker = self._linkers.get(loaded.digest)
            if linker is None:
                linker = WorkflowLinker(loaded)
                self._linkers[loaded.digest] = linker
            return linker

    def forget(self, digests: Iterable[str]) -> None:
        """Drop the linkers and spare instances of these components (no revision names them any more)."""
        gone = frozenset(digests)
        with self._lock:
            for digest in gone:
                self._linkers.pop(digest, None)
            slots = [self._slots.pop(key) for key in [k for k in self._slots if k[0] in gone]]
        for slot in slots:
            slot.close()

    def close(self) -> None:
        """Free the spare instances."""
        with self._lock:
            slots = list(self._slots.values())
            background, self._background = self._background, None
        for slot in slots:
            slot.close()
        if background is not None:
            background.shutdown(wait=True)

    def _slot(self, loaded: LoadedComponent, linker: WorkflowLinker, memory_bytes: int | None, reuse: int) -> InstanceSlot:
        key = (loaded.digest, memory_bytes, reuse)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                if self._background is None:
                    self._background = ThreadPoolExecutor(1, thread_name_prefix="dolmen-wf-instances")
                slot = self._slots[key] = InstanceSlot(
                    lambda: _instantiate(loaded, linker, memory_bytes),
                    self._background,
                    spares=self._spares,
                    reuse=reuse > 0,
                    max_uses=max(reuse, 1),
                )
            return slot

    def invoke(
        self,
        loaded: LoadedComponent,
        ctx: RunContext,
        *,
        timeout_ms: int | None,
        memory_bytes: int | None,
        reuse: int = 0,
        on_caught_up: Callable[[], None] | None = None,
    ) -> Any:
        """Call the execution's function with the params of its `created` event; return the JSON value.

        `reuse` > 0 lets an instance whose call returned normally serve up to
        that many runs in all (`instances: reuse` with `max_instance_uses`);
        0 gives every run a fresh instance. `on_caught_up()` is called when
        the run has matched every request of its log and goes on live.
        `timeout_ms` bounds the guest's time between two waits (None: no
        limit), `memory_bytes` its linear memory.

        Raises `TrapError` when the component does not export the function or
        cannot be instantiated, and what the call raises: `TrapError` and
        `ExecutionTimeoutError` (their messages with the guest's Python
        traceback), `ValueTooLargeError`, and what `RunContext` raises
        (`Unload`, `ContinueAsNew`, `NonDeterminismError`, ...).
        """
        ffqn = Ffqn.parse(ctx.ffqn)
        fn = loaded.info.functions().get(ffqn)
        if fn is None:
            raise TrapError(f"component {loaded.digest} does not export {ffqn}")
        linker = self.linker(loaded)
        slot = self._slot(loaded, linker, memory_bytes, reuse)
        ticks = deadline_ticks(timeout_ms)
        with bound(ctx):
            try:
                ready = slot.take()
            except WasmtimeError as exc:
                raise TrapError(f"instantiation of workflow {loaded.digest} failed: {str(exc).splitlines()[0]}") from None
        captured = CapturedOutput()
        guest_output = _GuestOutput(ctx, captured)
        ready.output.target = guest_output.write
        if ready.uses:
            ctx.redraw(ready.prologue)
        ready.store.set_epoch_deadline(ticks)
        context = ready.store._context()  # pyright: ignore[reportPrivateUsage]

        def refresh_deadline() -> None:
            # Time spent waiting for responses is not guest CPU time.
            wasmtime_ffi.wasmtime_context_set_epoch_deadline(context, ticks)

        def caught_up() -> None:
            # What the code printed while it replayed is in the pipes now (it is
            # waiting for this host call): handed over before it counts as new.
            ready.output.flush()
            guest_output.live = True
            if on_caught_up is not None:
                on_caught_up()

        ctx.after_wait = refresh_deadline
        ctx.caught_up = caught_up
        returned = False
        try:
            try:
                with bound(ctx):
                    value = call_function(
                        ready.store,
                        ready.func(ffqn),
                        fn,
                        ctx.replay.params,
                        timeout_ms=timeout_ms,
                        max_value_bytes=ctx.max_value_bytes,
                    )
                returned = True
                if not ready.uses:
                    ready.prologue = runtime_prologue(ctx.first_draws)
                return value
            finally:
                ctx.after_wait = None
                ctx.caught_up = None
                # Reused only after a normal return (an unload, a continuation or a trap
                # unwinds the guest mid-call). Closed before the failure is explained:
                # the instance's last output (a trap's traceback) is captured once it is.
                slot.give_back(ready, ok=returned)
        except (TrapError, ExecutionTimeoutError) as exc:
            exc.message = explain_trap(exc.message, captured.stderr_tail)
            exc.args = (exc.message,)
            raise


def _instantiate(loaded: LoadedComponent, linker: WorkflowLinker, memory_bytes: int | None) -> Ready:
    store = Store(loaded.engine)
    output = OutputSwitch(loaded.pump)
    try:
        wasi = WasiConfig()
        if loaded.prints:  # a component that cannot print needs no pipes (two per instance)
            output.attach(wasi)
        store.set_wasi(wasi)
        if memory_bytes is not None:
            store.set_limits(memory_size=memory_bytes)
        store.set_epoch_deadline(deadline_ticks(None))
        instance = linker.linker.instantiate(store, loaded.component)
    except BaseException:
        store.close()
        output.close()
        raise
    return Ready(store, instance, output)


# componentize-py reseeds CPython's `random` on an instance's first call, before the
# code runs (componentize-py PR #42): 624 words of Mersenne Twister state, 2,496 bytes,
# which wasi-libc's getentropy asks for 256 bytes at a time.
CPYTHON_RESEED = (256,) * 9 + (192,)


def runtime_prologue(drawn: list[int]) -> tuple[int, ...]:
    """What a guest runtime drew before the code ran, from a fresh instance's first run's first draws.

    That is the CPython reseed when the draws start with it, else nothing:
    the code's own early draws (`os.urandom`, `uuid4`) are never counted,
    so a reused instance draws them from the same place as a fresh one.
    """
    return CPYTHON_RESEED if tuple(drawn[: len(CPYTHON_RESEED)]) == CPYTHON_RESEED else ()


class _GuestOutput:
    """Where a run's output goes: `captured`, to explain a trap, and the runner's log lines.

    Only what the code prints once it runs past its log is logged: a replay
    prints again what earlier runs printed. Bytes arrive from the pump's
    thread some time after they were written, so the switch to live is made
    by `caught_up` (with everything printed before it handed over first),
    not by the replay's state when the bytes arrive.
    """

    def __init__(self, ctx: RunContext, captured: CapturedOutput) -> None:
        self.ctx = ctx
        self.captured = captured
        self.live = not ctx.replay.replaying
        self._decoder = StreamDecoder()

    def write(self, stream: str, data: bytes) -> None:
        self.captured.write(stream, data)
        text = self._decoder.decode(stream, data)
        if not self.live:
            return
        # A line per entry, however the pipe's reads happened to group the writes.
        for line in text.split("\n"):
            if line:
                self.ctx.emit("info", f"[{stream}] {line}")


# What Python raises when a workflow reaches for files, sockets or the network,
# which only activities have.
_IO_ERRORS = frozenset(
    {"OSError", "FileNotFoundError", "PermissionError", "IsADirectoryError", "NotADirectoryError", "ConnectionError"}
)


def explain_trap(message: str, stderr: bytes | bytearray) -> str:
    """A workflow's trap message with what its stderr says: the Python exception and its traceback."""
    summary = stderr_summary(stderr)
    if summary is None:
        return message
    message = f"{message}; {summary}"
    raised = summary.removeprefix("the guest raised ").partition(":")[0]
    if raised in _IO_ERRORS:
        message += (
            " (a workflow has no files, sockets or environment variables: do that I/O in an activity "
            "and pass its result to the workflow)"
        )
    traceback = python_traceback(stderr)
    return f"{message}\n{traceback}" if traceback else message
