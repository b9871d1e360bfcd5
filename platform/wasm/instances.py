"""Ready instances of one component: spares made ahead of time, and reuse when the deployment asks.

Instantiating a componentize-py component costs about half a millisecond of
CPU (its CPython heap is mapped in and its runtime set up), more than a trivial
call itself. Two ways take that off an execution's path:

- **Spares** (`DOLMEN_SPARE_INSTANCES`, default 0): a background thread keeps
  fresh instances made in advance. Wasmtime runs with the GIL released, so on a
  machine with a free core an attempt does not wait for instantiation; on a
  busy one the same work only moves (off by default: see README "Benchmarks"). Every attempt still gets an instance nobody used before.
- **Reuse** (opt-in, `instances: reuse` in the deployment): an instance that
  returned normally serves the next attempt too, up to `max_uses`, and is
  dropped after any trap or timeout. Globals, files opened, and memory the
  guest grew survive from one attempt to the next: the isolation between
  executions is the guest's own code, as in a long-running worker process.

An instance's stdout and stderr go through an `OutputSwitch`, so each attempt
captures its own output whatever instance it runs in.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from wasmtime import Store, WasiConfig
from wasmtime.component import Func, Instance

from ..ffqn import Ffqn
from .guard import StoreWatch
from .guest import find_function
from .pipes import InstancePipes, OutputPump

log = structlog.get_logger("dolmen.wasm")

# A warm instance per slot is enough to keep instantiation off the path of a
# serial workflow; more would only hold memory (each is a CPython heap).
DEFAULT_SPARES = 1


class OutputSwitch:
    """An instance's stdout and stderr (see `pipes`), forwarded to whoever holds the instance now.

    `target(stream, data)` receives `"stdout"`/`"stderr"` and the bytes
    written; None drops the output (an instance waiting as a spare prints
    nothing). Setting a new target first hands everything written until then
    to the previous one.
    """

    def __init__(self, pump: OutputPump) -> None:
        self._target: Callable[[str, bytes], None] | None = None
        self._pipes = InstancePipes(self._deliver, pump)

    def attach(self, wasi: WasiConfig) -> None:
        """Give `wasi` this instance's stdout and stderr."""
        self._pipes.attach(wasi)

    @property
    def target(self) -> Callable[[str, bytes], None] | None:
        """Who receives the output now (see the class docstring); set it to hand the output over."""
        return self._target

    @target.setter
    def target(self, target: Callable[[str, bytes], None] | None) -> None:
        self._pipes.flush(then=lambda: setattr(self, "_target", target))

    def flush(self) -> None:
        """Hand everything written so far to the target (the instance's writes are done when it waits)."""
        self._pipes.flush()

    def close(self) -> None:
        """Hand the last output to the target and free the pipes (once the store is closed)."""
        self._pipes.close()

    def _deliver(self, stream: str, data: bytes) -> None:
        target = self._target
        if target is not None:
            target(stream, data)


@dataclass(eq=False)
class Ready:
    """A store with an instantiated component, ready for a call."""

    store: Store
    instance: Instance
    output: OutputSwitch
    watch: StoreWatch = field(default_factory=StoreWatch)
    uses: int = 0
    # What the guest runtime drew from the host's entropy on its first call (a
    # workflow's, see `workflow.sandbox`): a reused instance does not draw it again.
    prologue: tuple[int, ...] = ()
    _funcs: dict[Ffqn, Func] = field(default_factory=dict)

    def func(self, ffqn: Ffqn) -> Func:
        """The exported function `ffqn` (looked up once per instance); `ComponentError` when it is not exported."""
        func = self._funcs.get(ffqn)
        if func is None:
            func = self._funcs[ffqn] = find_function(self.store, self.instance, ffqn)
        return func

    def close(self) -> None:
        """Free the store; everything the instance wrote has reached the current target once this returns."""
        self.store.close()
        self.output.close()
        self.output.target = None


class InstanceSlot:
    """Instances of one component under one configuration (limits, environment).

    `make()` creates a `Ready` instance (raising whatever instantiation
    raises); `take()` returns a spare or makes one now; `give_back(ready, ok)`
    keeps the instance for the next call when reuse is on and the call ended
    normally (at most `keep` idle ones: as many as calls run at once), and
    closes it otherwise.
    """

    def __init__(
        self,
        make: Callable[[], Ready],
        background: ThreadPoolExecutor,
        *,
        spares: int = DEFAULT_SPARES,
        reuse: bool = False,
        max_uses: int = 1000,
        keep: int = 16,
    ) -> None:
        self._make = make
        self._background = background
        self._spares = spares
        self._reuse = reuse
        self._max_uses = max_uses
        self._keep = max(keep, spares)
        self._ready: deque[Ready] = deque()
        self._making = 0
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> Ready:
        """An instance nobody holds: a spare or a reused one when there is one, else a new one."""
        with self._lock:
            ready = self._ready.popleft() if self._ready else None
        self._refill()
        return ready if ready is not None else self._make()

    def give_back(self, ready: Ready, ok: bool) -> None:
        """Done with `ready`: keep it (reuse, normal return, uses left) or close it in the background."""
        ready.uses += 1
        if self._reuse and ok and ready.uses < self._max_uses:
            with self._lock:
                if not self._closed and len(self._ready) < self._keep:
                    ready.output.target = None
                    self._ready.appendleft(ready)  # the warmest instance first
                    return
        # Closed here: queued behind spares on a busy machine, used stores piled up
        # (each holds a guest heap). Output written until then reaches this call's target.
        ready.close()

    def discard(self, ready: Ready) -> None:
        """Close `ready` now, after a failed call: its last output is in its target once this returns."""
        ready.close()
        self._refill()

    def close(self) -> None:
        """Close every idle instance (blocking); later give-backs are closed too."""
        with self._lock:
            self._closed = True
            idle = list(self._ready)
            self._ready.clear()
        for ready in idle:
            ready.close()

    def _refill(self) -> None:
        with self._lock:
            if self._closed or len(self._ready) + self._making >= self._spares:
                return
            self._making += 1
        self._submit(self._make_spare)

    def _make_spare(self) -> None:
        try:
            ready: Ready | None = self._make()
        except Exception:  # noqa: BLE001 - the call path instantiates again and reports the error
            log.debug("spare instance failed", exc_info=True)
            ready = None
        with self._lock:
            self._making -= 1
            if ready is not None and not self._closed:
                self._ready.append(ready)
                ready = None
        if ready is not None:
            ready.close()

    def _submit(self, task: Callable[[], Any]) -> None:
        try:
            self._background.submit(task)
        except RuntimeError:  # shut down: do it here
            task()
