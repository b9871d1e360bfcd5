"""Wasmtime engines and the epoch ticker that enforces CPU time limits."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Literal

from wasmtime import Config, Engine

EngineKind = Literal["activity", "workflow"]

# How often the epoch advances. A timeout of T ms becomes a deadline of
# ceil(T / EPOCH_TICK_MS) ticks, so limits are enforced to within one tick.
EPOCH_TICK_MS = 10


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Everything that changes compiled code; part of the compiled-cache key.

    The fields set wasmtime's `Config` (`cranelift_nan_canonicalization`,
    `wasm_threads`, `epoch_interruption`, `max_wasm_stack` in bytes; see
    https://docs.wasmtime.dev/api/wasmtime/struct.Config.html).
    """

    kind: EngineKind = "activity"
    nan_canonicalization: bool = False
    threads: bool = False
    epoch_interruption: bool = True
    max_wasm_stack: int = 2 * 1024 * 1024

    @classmethod
    def for_kind(cls, kind: EngineKind) -> EngineSettings:
        """Workflows get deterministic floats; both get epoch interruption, no threads."""
        return cls(kind=kind, nan_canonicalization=(kind == "workflow"))

    def cache_key(self) -> str:
        """Identifies compiled artifacts: 16 hex digits of the SHA-256 of wasmtime's version plus these settings."""
        text = f"wasmtime-{version('wasmtime')}:" + ",".join(f"{k}={v}" for k, v in sorted(asdict(self).items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def build(self) -> Engine:
        """Create the wasmtime engine for these settings."""
        config = Config()
        config.wasm_component_model = True
        config.wasm_threads = self.threads
        config.shared_memory = False
        config.cranelift_nan_canonicalization = self.nan_canonicalization
        config.epoch_interruption = self.epoch_interruption
        config.max_wasm_stack = self.max_wasm_stack
        # Deterministic relaxed SIMD keeps workflow floats identical across CPUs.
        config.wasm_relaxed_simd_deterministic = True
        return Engine(config)


class EpochTicker:
    """Advances the epochs of engines from one daemon thread, every `tick_ms` milliseconds.

    Wasm runs with the GIL released (ctypes), so this thread keeps ticking
    while a guest loops, and the guest traps at its deadline (wasmtime's
    epoch-based interruption, `Config.epoch_interruption`).
    """

    def __init__(self, tick_ms: int = EPOCH_TICK_MS) -> None:
        self._engines: list[Engine] = []
        self._tick = tick_ms / 1000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, engine: Engine) -> None:
        """Start ticking `engine` (starts the thread on first use)."""
        with self._lock:
            self._engines.append(engine)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dolmen-epoch", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            with self._lock:
                engines = list(self._engines)
            for engine in engines:
                engine.increment_epoch()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()


def deadline_ticks(timeout_ms: int | None) -> int:
    """Epoch ticks (of `EPOCH_TICK_MS`) for a timeout in ms; no timeout means practically never (2**62).

    One tick more than the timeout divides into: the current tick may be
    almost over when the deadline is set, and a guest must never be stopped early.
    """
    if timeout_ms is None:
        return 2**62
    return max(1, -(-timeout_ms // EPOCH_TICK_MS)) + 1
