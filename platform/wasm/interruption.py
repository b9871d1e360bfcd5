"""Stopping a running activity call: at its time limit, or when it is cancelled.

An `Interruption` belongs to one call. Two mechanisms read it:

- **Epoch callbacks** (`watch_epochs`), for a guest that runs wasm code: the
  store's epoch deadline is at most `SLICE_TICKS` ahead, and when it is
  reached wasmtime calls back; the callback traps the guest if the call is
  cancelled or past its deadline, and otherwise moves the deadline on. A
  cancellation therefore stops a spinning guest within one slice (100 ms).
- **The guard** (`guard`), for a guest blocked in a WASI wait, which no epoch
  reaches: its waits end at the deadline, and every slice to look for a
  cancellation.

The source of truth for why a call stopped is the `Interruption`, not the
trap's text: `error()` gives the Dolmen error to record.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Any, Protocol

from wasmtime import Store
from wasmtime import _ffi as ffi
from wasmtime._value import _unintern  # the store-data slab; no public accessor for a raw context

from ..errors import CancelledError, ExecutionError, ExecutionTimeoutError
from .engine import EPOCH_TICK_MS

# How often a long call looks for a cancellation, in epoch ticks and in ns.
SLICE_TICKS = 10
SLICE_NS = SLICE_TICKS * EPOCH_TICK_MS * 1_000_000
# wasmtime_update_deadline_kind_t: go on with a new deadline (yielding is for async stores only).
_CONTINUE = 0
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class Interruption:
    """Why and when one activity call must stop; `cancel` may be called from any thread.

    `timeout_ms` None means no time limit; `setting` names where it is set
    (for the timeout message). The deadline runs on
    `time.monotonic_ns()` from `start()` (instantiation and the call each
    start it; a spare's clock starts again at its call).
    """

    def __init__(self, timeout_ms: int | None, setting: str = "`timeout` in the deployment") -> None:
        self.timeout_ms = timeout_ms
        self.setting = setting  # what a user raises for a longer limit, for the message
        self._deadline_ns: int | None = None
        self._cancelled: str | None = None
        self._fired: ExecutionError | None = None
        self._blocked_in: str | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the clock of the time limit now."""
        if self.timeout_ms is not None:
            self._deadline_ns = time.monotonic_ns() + self.timeout_ms * 1_000_000

    def cancel(self, reason: str) -> None:
        """Stop the call at its next check (within one slice), recording `reason`."""
        with self._lock:
            if self._cancelled is None:
                self._cancelled = reason

    def remaining_ns(self) -> int | None:
        """Time left before the deadline (0 once passed); None without a time limit."""
        if self._deadline_ns is None:
            return None
        return max(0, self._deadline_ns - time.monotonic_ns())

    def check(self, blocked_in: str | None = None) -> None:
        """Raise the error to record if the call must stop now: `CancelledError` or `ExecutionTimeoutError`.

        `blocked_in` names the wait, for the message.
        """
        error = self.due(blocked_in)
        if error is not None:
            raise error

    def error(self) -> ExecutionError | None:
        """The error that stopped the call, if this interruption stopped it."""
        return self._fired

    def wait_slice_ns(self) -> int:
        """How long one wait may block before looking again: the time left, at most one slice."""
        left = self.remaining_ns()
        return SLICE_NS if left is None else min(SLICE_NS, left)

    def due(self, blocked_in: str | None = None) -> ExecutionError | None:
        """The error to record if the call must stop now, else None (the first answer sticks)."""
        with self._lock:
            if self._fired is not None:
                return self._fired
            if self._cancelled is not None:
                self._fired = CancelledError(f"cancelled while it ran: {self._cancelled}")
            elif self._deadline_ns is not None and time.monotonic_ns() >= self._deadline_ns:
                self._fired = ExecutionTimeoutError(self._timeout_message(blocked_in))
            return self._fired

    def _timeout_message(self, blocked_in: str | None) -> str:
        where = (
            f"while it waited in {blocked_in} (a sleep, or I/O such as an HTTP request); the wait was cut short"
            if blocked_in
            else "and was interrupted"
        )
        return (
            f"the guest ran past its time limit of {self.timeout_ms} ms {where}; "
            f"raise {self.setting} if the work is legitimately slow"
        )

    def ticks(self) -> int:
        """The epoch deadline to set before running guest code: at most one slice ahead."""
        left = self.remaining_ns()
        if left is None:
            return SLICE_TICKS
        # One tick more than the time left divides into, so a guest is never stopped early.
        return max(1, min(SLICE_TICKS, -(-left // (EPOCH_TICK_MS * 1_000_000)) + 1))


class Watched(Protocol):
    """A store's data (`Store(engine, data)`) as the epoch callback reads it."""

    current: Interruption | None
    # The WASI wait the guest is blocked in, if any (the guard's own wasm code runs meanwhile).
    waiting: str | None


def store_data(context: Any) -> Any:
    """The data object of the store behind `context` (a `wasmtime_context_t` pointer), or None."""
    index = ffi.wasmtime_context_get_data(context)
    # Declared as a pointer, returned by ctypes as a c_void_p would be: an int, or None for no data.
    return _unintern(index) if isinstance(index, int) and index else None


# wasmtime_error_t *(*)(wasmtime_context_t *, void *data, uint64_t *delta, wasmtime_update_deadline_kind_t *)
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)


@_CALLBACK
def _on_deadline(context, _data, delta, kind):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    watched: Watched | None = store_data(context)
    interruption = watched.current if watched is not None else None
    if interruption is not None and interruption.due(watched.waiting if watched is not None else None) is not None:
        # The message is never shown: the caller records `interruption.error()`.
        error = ffi.wasmtime_error_new(ctypes.create_string_buffer(b"dolmen: call interrupted"))
        return ctypes.cast(error, ctypes.c_void_p).value or 0
    delta[0] = interruption.ticks() if interruption is not None else SLICE_TICKS
    kind[0] = _CONTINUE
    return 0


def watch_epochs(store: Store) -> None:
    """Have `store`'s epoch deadlines consult its data's `current` interruption (see the module docstring).

    The store must have been made with data (`Store(engine, data)`) that is `Watched`.
    """
    ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), _on_deadline, None, _NO_FINALIZER())
