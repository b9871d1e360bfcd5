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
call's output is complete when its caller looks at it. Pipes are pooled: an
instance borrows two and gives them back drained once its store is closed.
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


class _Pipe:
    """One pipe of the pool: the read end (non-blocking, watched by the pump) and the write end, kept open.

    Keeping the write end open is what lets the pipe outlive an instance: a
    store that closes its own description of it leaves no end-of-file, and the
    next instance opens `path` anew.
    """

    __slots__ = ("read", "write", "path", "owner", "stream")

    def __init__(self) -> None:
        self.read, self.write = os.pipe()
        os.set_blocking(self.read, False)
        self.path = f"/dev/fd/{self.write}"
        self.owner: InstancePipes | None = None
        self.stream = ""

    def close(self) -> None:
        os.close(self.read)
        os.close(self.write)


class OutputPump:
    """One thread that reads whatever any watched pipe has, as it arrives, and a pool of pipes.

    Owned by whoever loads components (a `ComponentLoader` has one), started
    with the first pipe; `close` ends its thread. Pipes are made once and
    lent to one instance at a time (`take`, `give_back`): creating, watching
    and closing two pipes per fresh instance cost about as much CPU as
    instantiating it. Up to `max_idle` pipes wait in the pool.
    """

    def __init__(self, max_idle: int = 64) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._idle: list[_Pipe] = []
        self._max_idle = max_idle

    def close(self) -> None:
        """Stop reading (within a second) and free the idle pipes; pipes still lent are freed when given back."""
        self._stopped.set()
        with self._lock:
            idle, self._idle = self._idle, []
            for pipe in idle:
                self._forget(pipe)
        for pipe in idle:
            pipe.close()

    def take(self, owner: InstancePipes, stream: str) -> _Pipe:
        """A pipe whose bytes go to `owner.pump` from now on, until it is given back."""
        with self._lock:
            pipe = self._idle.pop() if self._idle else None
        if pipe is None:
            pipe = _Pipe()
            with self._lock:
                self._selector.register(pipe.read, selectors.EVENT_READ, pipe)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="dolmen-output", daemon=True)
                    self._thread.start()
        pipe.owner, pipe.stream = owner, stream
        return pipe

    def give_back(self, pipe: _Pipe) -> None:
        """Return a drained pipe whose instance's store is closed (no byte of it can come any more)."""
        pipe.owner = None
        with self._lock:
            if not self._stopped.is_set() and len(self._idle) < self._max_idle:
                self._idle.append(pipe)
                return
            self._forget(pipe)
        pipe.close()

    def _forget(self, pipe: _Pipe) -> None:
        try:
            self._selector.unregister(pipe.read)
        except (KeyError, ValueError):
            pass

    def _run(self) -> None:
        while not self._stopped.is_set():
            # Registrations from other threads take effect during the wait (epoll).
            for key, _ in self._selector.select(timeout=1.0):
                pipe: _Pipe = key.data
                owner = pipe.owner
                try:
                    if owner is not None:
                        owner.pump(pipe)
                except Exception:  # noqa: BLE001 - the pump serves every instance: it must not stop
                    log.exception("reading guest output failed", stream=pipe.stream)


class InstancePipes:
    """One instance's stdout and stderr pipes, lent by the pump; their bytes go to `deliver(stream, data)`.

    `deliver` is called with this object's lock held, from the pump's thread
    or from a caller of `flush`/`close`, so the bytes of one instance arrive
    in order and never after `close` returned.
    """

    def __init__(self, deliver: Callable[[str, bytes], None], pump: OutputPump) -> None:
        self._deliver = deliver
        self._pump = pump
        self._pipes: dict[str, _Pipe] = {}
        self._lock = threading.Lock()

    def attach(self, wasi: WasiConfig) -> None:
        """Give `wasi` the write ends of a stdout pipe and a stderr pipe of the pool."""
        for stream in STREAMS:
            pipe = self._pump.take(self, stream)
            with self._lock:
                self._pipes[stream] = pipe
            # wasmtime opens a file description of its own on the pipe, closed with the store.
            setattr(wasi, f"{stream}_file", pipe.path)

    def pump(self, pipe: _Pipe) -> None:
        """Deliver one read of `pipe` (the pump's thread, when the pipe has bytes), if it is still ours."""
        with self._lock:
            if self._pipes.get(pipe.stream) is pipe:
                self._read(pipe, once=True)

    def flush(self, then: Callable[[], None] | None = None) -> None:
        """Deliver every byte written so far; then call `then` before any later byte is delivered."""
        with self._lock:
            for pipe in self._pipes.values():
                self._read(pipe, once=False)
            if then is not None:
                then()

    def close(self) -> None:
        """Deliver what is left and give the pipes back (after the instance's store is closed).

        wasmtime writes a guest's output on the guest's own thread, so once
        the store is closed every byte of it is in the pipe: read until it
        is empty, the pipe is clean for the next instance.
        """
        with self._lock:
            pipes, self._pipes = list(self._pipes.values()), {}
            for pipe in pipes:
                self._read(pipe, once=False)
        for pipe in pipes:
            self._pump.give_back(pipe)

    def _read(self, pipe: _Pipe, *, once: bool) -> None:
        while True:
            try:
                data = os.read(pipe.read, _READ_SIZE)
            except BlockingIOError:
                return  # nothing more for now
            if not data:  # pragma: no cover - the pool holds the write end open
                return
            self._deliver(pipe.stream, data)
            if once:
                return
