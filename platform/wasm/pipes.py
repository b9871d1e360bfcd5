"""A guest's stdout and stderr through pipes, so that every byte it writes reaches the host.

Why not wasmtime's output callbacks (`WasiConfig.stdout_custom`): wasmtime's
C API gives a callback to WASI 0.2 guests through wasmtime-wasi's default
`AsyncWriteStream`, whose `check-write` allows 8,192 bytes, so a longer write
comes back short; componentize-py's CPython, whose stdout and stderr are
unbuffered (`PYTHONUNBUFFERED` at pre-initialization), drops whatever a short
write did not take: one print() of 20,000 characters kept its first 8,192
bytes. A stream opened on a file (here the write end of a pipe, `/dev/fd/N`)
takes 64 KiB per write, all that the guest hands over at once.

wasmtime writes to the pipe on the guest's own thread and waits while the pipe
is full, so one reader thread per component loader (the `OutputPump`, like wasmtime's
own runtime threads) drains every instance's pipes as bytes arrive. The
thread that runs a call reads what is left itself (`InstancePipes.flush`,
`close`): a guest's write has reached the pipe before the call returns, so a
call's output is complete when its caller looks at it.
"""

from __future__ import annotations

import os
import selectors
import threading
from collections.abc import Callable

import structlog
from wasmtime import WasiConfig

log = structlog.get_logger("dolmen.wasm")

STREAMS = ("stdout", "stderr")
# One read per wake-up of the pump (a pipe holds 64 KiB unless resized), so
# that a guest writing without pause cannot keep it from the others.
_READ_SIZE = 64 * 1024


class OutputPump:
    """One thread that reads whatever any watched pipe has, as it arrives.

    Owned by whoever loads components (a `ComponentLoader` has one), started
    with the first pipe it watches; `close` ends its thread.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def close(self) -> None:
        """Stop reading (within a second); pipes still watched are read by their own `close`."""
        self._stopped.set()

    def watch(self, fd: int, pipes: InstancePipes, stream: str) -> None:
        """Read `fd` (non-blocking) into `pipes` whenever it has bytes, until `forget(fd)`."""
        with self._lock:
            self._selector.register(fd, selectors.EVENT_READ, (pipes, stream))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dolmen-output", daemon=True)
                self._thread.start()

    def forget(self, fd: int) -> None:
        """Stop watching `fd` (before it is closed)."""
        with self._lock:
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError):
                pass

    def _run(self) -> None:
        while not self._stopped.is_set():
            # Registrations from other threads take effect during the wait (epoll),
            # and an event for a pipe closed since is skipped by its `InstancePipes`.
            for key, _ in self._selector.select(timeout=1.0):
                pipes, stream = key.data
                try:
                    pipes.pump(stream)
                except Exception:  # noqa: BLE001 - the pump serves every instance: it must not stop
                    log.exception("reading guest output failed", stream=stream)


class InstancePipes:
    """The read ends of one instance's stdout and stderr pipes; their bytes go to `deliver(stream, data)`.

    `deliver` is called with this object's lock held, from the pump's thread
    or from a caller of `flush`/`close`, so the bytes of one instance arrive
    in order and never after `close` returned.
    """

    def __init__(self, deliver: Callable[[str, bytes], None], pump: OutputPump) -> None:
        self._deliver = deliver
        self._pump = pump
        self._fds: dict[str, int] = {}
        self._unwatched: set[str] = set()
        self._lock = threading.Lock()

    def attach(self, wasi: WasiConfig) -> None:
        """Give `wasi` the write ends of a new stdout pipe and a new stderr pipe."""
        for stream in STREAMS:
            read, write = os.pipe()
            try:
                os.set_blocking(read, False)
                # wasmtime opens a file description of its own on the pipe; once
                # ours is closed, the pipe ends when the instance's store does.
                setattr(wasi, f"{stream}_file", f"/dev/fd/{write}")
            except BaseException:
                os.close(read)
                raise
            finally:
                os.close(write)
            with self._lock:
                self._fds[stream] = read
            self._pump.watch(read, self, stream)

    def pump(self, stream: str) -> None:
        """Deliver one read of `stream` (the pump's thread, when the pipe has bytes)."""
        with self._lock:
            self._read(stream, once=True)

    def flush(self, then: Callable[[], None] | None = None) -> None:
        """Deliver every byte written so far; then call `then` before any later byte is delivered."""
        with self._lock:
            for stream in list(self._fds):
                self._read(stream, once=False)
            if then is not None:
                then()

    def unwatch(self) -> None:
        """Stop the pump's reads before the store is closed: its pipes' ends would wake the pump for nothing."""
        with self._lock:
            for stream, fd in self._fds.items():
                self._pump.forget(fd)
                self._unwatched.add(stream)

    def close(self) -> None:
        """Deliver what is left and free the pipes (after the instance's store is closed)."""
        with self._lock:
            for stream in list(self._fds):
                self._read(stream, once=False)
            for stream in list(self._fds):
                self._drop(stream)

    def _read(self, stream: str, *, once: bool) -> None:
        while (fd := self._fds.get(stream)) is not None:
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                return  # nothing more for now
            if not data:
                self._drop(stream)  # the store closed its end
                return
            self._deliver(stream, data)
            if once:
                return

    def _drop(self, stream: str) -> None:
        fd = self._fds.pop(stream)
        if stream not in self._unwatched:
            self._pump.forget(fd)
        os.close(fd)
