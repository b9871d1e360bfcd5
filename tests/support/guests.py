"""Build and load the guest components under tests/components/, once.

`build_guest(name, world)` builds `tests/components/<name>/` (its `app.py`
and `wit/`) with componentize-py into `tests/.components/`, keyed by a hash
of the sources, so a component is rebuilt only when its sources change. The
compiled wasmtime artifacts live in `tests/.components/data/` (a Dolmen data
directory), so a component is compiled once and deserialized afterwards.

Use the fixtures from a conftest.py by importing them:

    from tests.support.guests import guest_loader  # noqa: F401
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from wasmtime import Store, WasiConfig
from wasmtime.component import Linker

from dolmen.platform.build import build_python_guest
from dolmen.platform.ffqn import Ffqn
from dolmen.platform.stub_build import build_stub
from dolmen.platform.wasm.engine import EngineKind, EngineSettings
from dolmen.platform.wasm.guest import call_function, find_function
from dolmen.platform.wasm.loader import ComponentLoader, LoadedComponent
from dolmen.platform.wit.codec import canonical_params
from dolmen.platform.wasm.cache import ComponentCache

TESTS = Path(__file__).resolve().parents[1]
COMPONENTS = TESTS / "components"
BUILD_CACHE = TESTS / ".components"
# A Dolmen data directory shared by test runs: component bytes and compiled artifacts.
DATA_DIR = BUILD_CACHE / "data"


@contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """Serialize builds of one guest across processes (parallel test runs)."""
    BUILD_CACHE.mkdir(parents=True, exist_ok=True)
    with open(BUILD_CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_guest(name: str, world: str) -> Path:
    """The component built from tests/components/<name> for `world` (built at most once per source change)."""
    src = COMPONENTS / name
    if not (src / "app.py").is_file():
        raise FileNotFoundError(f"no guest at {src}: expected {src / 'app.py'} and {src / 'wit'}/")
    with _exclusive(name):
        return build_python_guest(src, world, cache_dir=BUILD_CACHE).path


def build_stub_guest(name: str, world: str) -> Path:
    """The stub component (WIT only, `platform build --stub`) of tests/components/<name> for `world`."""
    src = COMPONENTS / name
    with _exclusive(name):
        return build_stub(src, world, cache_dir=BUILD_CACHE).path


def component_cache() -> ComponentCache:
    """The shared test data directory's component cache."""
    return ComponentCache(DATA_DIR)


def new_loader(kind: EngineKind = "activity") -> ComponentLoader:
    """A fresh loader (own engine, empty memory) over the shared compiled cache."""
    return ComponentLoader(component_cache(), EngineSettings.for_kind(kind))


def load_guest(loader: ComponentLoader, name: str, world: str) -> LoadedComponent:
    """Build (if needed) and load a guest with `loader`; compilation is cached on disk."""
    path = build_guest(name, world)
    with _exclusive(f"compile-{name}-{loader.settings.kind}"):
        return loader.load_file(path)


@pytest.fixture(scope="session")
def guest_loader() -> ComponentLoader:
    """One activity-engine loader for the session, over the shared compiled cache."""
    return new_loader("activity")


@pytest.fixture(scope="session")
def echo_guest(guest_loader: ComponentLoader) -> LoadedComponent:
    """The echo component (tests/components/echo): an echo function for every WIT type shape."""
    return load_guest(guest_loader, "echo", "echo")


@pytest.fixture(scope="session")
def faults_guest(guest_loader: ComponentLoader) -> LoadedComponent:
    """The faults component (tests/components/faults): traps, loops, memory hogs, err results."""
    return load_guest(guest_loader, "faults", "faulty")


@pytest.fixture(scope="session")
def greeter_v1_guest(guest_loader: ComponentLoader) -> LoadedComponent:
    """test:greeter@1.0.0: two interfaces, a resource and a world-level export."""
    return load_guest(guest_loader, "greeter-v1", "greeter")


@pytest.fixture(scope="session")
def greeter_v2_guest(guest_loader: ComponentLoader) -> LoadedComponent:
    """test:greeter@2.0.0: a changed `greet` and an import no host provides."""
    return load_guest(guest_loader, "greeter-v2", "greeter")


class GuestInstance:
    """One long-lived instance of a loaded component, for many cheap calls.

    Calls go through the same path as the activity host (JSON params
    validated by `canonical_params`, then `call_function`), but reuse one
    store and instance; output is discarded and there is no time limit.
    """

    def __init__(self, loaded: LoadedComponent) -> None:
        self.loaded = loaded
        self.functions = loaded.info.functions()
        linker = Linker(loaded.engine)
        linker.add_wasip2()
        self.store = Store(loaded.engine)
        self.store.set_wasi(WasiConfig())
        self.store.set_epoch_deadline(2**62)
        self.instance = linker.instantiate(self.store, loaded.component)

    def call(self, ffqn: str, params: Any) -> Any:
        """Call `ffqn` with JSON params (array or object); return the JSON result."""
        name = Ffqn.parse(ffqn)
        fn = self.functions[name]
        func = find_function(self.store, self.instance, name)
        return call_function(self.store, func, fn, canonical_params(params, fn))

    def close(self) -> None:
        """Free the store."""
        self.store.close()
