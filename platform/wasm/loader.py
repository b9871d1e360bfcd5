"""Load components by digest: compile once, then deserialize the cached artifact."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from wasmtime import Engine, WasmtimeError
from wasmtime.component import Component

from .cache import ComponentCache, atomic_write
from ..errors import ComponentError, NotFoundError
from . import _wasmtime_fixes
from .engine import EngineSettings, EpochTicker
from .guard import Guard, guards_imports
from .introspect import ComponentInfo, inspect_component
from .pipes import OutputPump

_wasmtime_fixes.apply()  # see that module: variant lowering, per-thread host exceptions, fast list<u8>

log = structlog.get_logger("dolmen.wasm")


@dataclass(frozen=True, slots=True)
class LoadTiming:
    """How a load went: compiled from scratch or deserialized from the cache."""

    compiled: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class LoadedComponent:
    """A compiled component, its digest and its description.

    `timing` tells how this process obtained the compiled code: compiled from
    the bytes, or deserialized from the cached artifact.
    """

    digest: str
    component: Component
    info: ComponentInfo
    engine: Engine
    settings: EngineSettings
    timing: LoadTiming | None = None
    # Reads its instances' stdout and stderr (see `pipes`): the loader's, shared by its components.
    pump: OutputPump = field(default_factory=OutputPump, compare=False)
    # Whether it imports a WASI output stream (else its instances need no pipes).
    prints: bool = True
    # Bounds its WASI waits by each call's time limit (see `guard`); None if it cannot wait.
    guard: Guard | None = field(default=None, compare=False)


def imports_output(info: ComponentInfo) -> bool:
    """Whether a component imports `wasi:cli/stdout` or `wasi:cli/stderr`: only then can it print."""
    return any(i.name.startswith(("wasi:cli/stdout@", "wasi:cli/stderr@")) for i in info.imports)


class ComponentLoader:
    """Compiles and caches components for one engine configuration.

    One loader per engine kind per process; loaded components are kept in
    memory by digest until `forget` (a runner forgets digests that left every
    revision), so a digest stays loaded while executions use it. The
    compiled artifact is cached on disk under the digest and
    `EngineSettings.cache_key()` (wasmtime's version and every setting that
    changes code), so only the first load anywhere pays for compilation.
    """

    def __init__(
        self,
        cache: ComponentCache,
        settings: EngineSettings,
        ticker: EpochTicker | None = None,
        fetch: Callable[[str], None] | None = None,
    ) -> None:
        """`fetch(digest)` puts a component that is not in the cache into it (e.g. from Redis)."""
        self.cache = cache
        self.fetch = fetch
        self.settings = settings
        self.engine = settings.build()
        if ticker is not None:
            ticker.add(self.engine)
        self.pump = OutputPump()
        self._loaded: dict[str, LoadedComponent] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.last_timing: LoadTiming | None = None
        self._guard: Guard | None = None

    def guard(self) -> Guard:
        """The engine's guard (see `guard`), made on first use."""
        with self._lock:
            if self._guard is None:
                self._guard = Guard(self.engine)
            return self._guard

    def load_bytes(self, data: bytes) -> LoadedComponent:
        """Store `data` in the cache and load it.

        Raises `ComponentError` when `data` is not a WebAssembly component (no
        `\\0asm` header, or a core module), and what `load` raises.
        """
        if not data.startswith(b"\0asm"):
            raise ComponentError(
                "this file is not a WebAssembly binary (it does not start with \\0asm); "
                "build a component with e.g. `platform build` or `componentize-py componentize`"
            )
        if data[4:8] == b"\x01\x00\x00\x00":
            raise ComponentError(
                "this is a core WebAssembly module, not a component; wrap it with "
                "`wasm-tools component new` or build it with a component toolchain"
            )
        digest = self.cache.put(data)
        return self.load(digest)

    def load_file(self, path: Path) -> LoadedComponent:
        """Read a component file, store it in the cache and load it.

        Raises `NotFoundError` when the file does not exist, `ComponentError`
        when it cannot be read, and what `load_bytes` raises.
        """
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"component file '{path}' does not exist") from None
        except OSError as exc:
            raise ComponentError(f"cannot read component file '{path}': {exc.strerror or exc}") from None
        return self.load_bytes(data)

    def load(self, digest: str) -> LoadedComponent:
        """Load a cached component by digest (compiling it at most once).

        A digest not in the cache is fetched first (`fetch`, raising what it
        raises). Raises `NotFoundError` when it is not cached (and there is no
        `fetch`), `IntegrityError` when the cached bytes are damaged, and
        `ComponentError` when it does not compile or its types cannot be read.
        """
        with self._lock:
            loaded = self._loaded.get(digest)
            if loaded is not None:
                return loaded
            lock = self._locks.setdefault(digest, threading.Lock())
        # One lock per digest: loading one component does not wait for
        # another one's compilation.
        with lock:
            loaded = self._loaded.get(digest)
            if loaded is not None:
                return loaded
            if self.fetch is not None and not self.cache.has(digest):
                self.fetch(digest)
            component, timing = self._compile_or_deserialize(digest)
            info = self._info(digest, component)
            # Workflows wait only through the workflow host, never in WASI.
            waits = self.settings.kind == "activity" and guards_imports([i.name for i in info.imports])
            loaded = LoadedComponent(
                digest, component, info, self.engine, self.settings, timing, self.pump, imports_output(info),
                self.guard() if waits else None,
            )  # fmt: skip
            with self._lock:
                self._loaded[digest] = loaded
                self.last_timing = timing
            return loaded

    def forget(self, digests: Iterable[str]) -> None:
        """Stop keeping these components loaded (a later `load` loads them again)."""
        with self._lock:
            for digest in digests:
                self._loaded.pop(digest, None)
                self._locks.pop(digest, None)

    def _info(self, digest: str, component: Component) -> ComponentInfo:
        """The component's description, from the cache next to its compiled artifact when there."""
        path = self.cache.compiled_path(digest, self.settings.cache_key()).with_suffix(".info.json")
        try:
            return ComponentInfo.from_cache(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent or written by another version: read the types again
        try:
            info = inspect_component(self.engine, component)
        except (WasmtimeError, TypeError) as exc:
            raise ComponentError(f"cannot read the types of component {digest}: {exc}") from None
        try:
            atomic_write(path, json.dumps(info.to_cache()).encode())
        except OSError as exc:
            log.warning("component description not cached", digest=digest, error=str(exc))
        return info

    def _compile_or_deserialize(self, digest: str) -> tuple[Component, LoadTiming]:
        key = self.settings.cache_key()
        artifact = self.cache.compiled_path(digest, key)
        if artifact.is_file():
            start = time.perf_counter()
            try:
                component = Component.deserialize_file(self.engine, str(artifact))
                timing = LoadTiming(False, time.perf_counter() - start)
                log.debug("component deserialized", digest=digest, ms=round(timing.seconds * 1000, 2))
                return component, timing
            except WasmtimeError:
                # Stale or damaged artifact (e.g. another wasmtime build): recompile.
                log.warning("compiled artifact unusable, recompiling", digest=digest, path=str(artifact))
                artifact.unlink(missing_ok=True)
        data = self.cache.get(digest)
        start = time.perf_counter()
        try:
            component = Component(self.engine, data)
        except WasmtimeError as exc:
            raise ComponentError(f"component {digest} does not compile: {_first_line(exc)}") from None
        timing = LoadTiming(True, time.perf_counter() - start)
        log.info("component compiled", digest=digest, seconds=round(timing.seconds, 2))
        try:
            self.cache.put_compiled(digest, key, bytes(component.serialize()))
        except (OSError, WasmtimeError) as exc:
            log.warning("compiled artifact not cached", digest=digest, error=str(exc))
        return component, timing


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
