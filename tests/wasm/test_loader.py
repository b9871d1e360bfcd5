"""Loading components by digest: compile once, then deserialize the cached artifact."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import pytest
import wasmtime
from wasmtime import Store, WasiConfig
from wasmtime.component import Linker

from dolmen.platform.errors import ComponentError, IntegrityError, NotFoundError
from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.activity_host import ActivityHost, ActivityLimits
from dolmen.platform.wasm.engine import EngineSettings
from dolmen.platform.wasm.guest import call_function, find_function
from dolmen.platform.wasm.loader import ComponentLoader, LoadedComponent
from dolmen.platform.wasm.cache import ComponentCache, sha256_digest
from tests.support.guests import build_guest, new_loader

ANSWER_WAT = """
(component
  (core module $m (func (export "f") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func $f (result u32) (canon lift (core func $i "f")))
  (instance $x (export "get" (func $f)))
  (export "test:tiny/answer@0.1.0" (instance $x))
)
"""


@pytest.fixture
def tiny() -> bytes:
    """A hand-written component that compiles in milliseconds."""
    return bytes(wasmtime.wat2wasm(ANSWER_WAT))


def loader_for(root: Path, kind: str = "activity") -> ComponentLoader:
    """A fresh loader (new engine, empty memory) over the cache at `root`."""
    return ComponentLoader(ComponentCache(root), EngineSettings.for_kind(kind))  # type: ignore[arg-type]


def test_components_are_keyed_by_sha256_digest(tmp_path: Path, tiny: bytes) -> None:
    """Loading bytes stores them under their sha256 digest and keeps the compiled artifact next to them."""
    loader = loader_for(tmp_path)
    loaded = loader.load_bytes(tiny)
    assert loaded.digest == sha256_digest(tiny)
    assert loader.cache.get(loaded.digest) == tiny
    artifact = loader.cache.compiled_path(loaded.digest, loader.settings.cache_key())
    assert artifact.is_file()
    assert loader.load(loaded.digest) is loaded
    assert loaded.timing is not None and loaded.timing.compiled


def test_second_loader_deserializes_the_artifact(tmp_path: Path, tiny: bytes) -> None:
    """A new process (a new loader and engine) deserializes the artifact instead of compiling."""
    first = loader_for(tmp_path).load_bytes(tiny)
    second = loader_for(tmp_path).load(first.digest)
    assert first.timing is not None and first.timing.compiled
    assert second.timing is not None and not second.timing.compiled
    assert second.info == first.info


def test_artifacts_are_per_engine_settings(tmp_path: Path, tiny: bytes) -> None:
    """Activity and workflow engines compile differently, so each kind keeps its own artifact."""
    digest = loader_for(tmp_path, "activity").load_bytes(tiny).digest
    workflow = loader_for(tmp_path, "workflow").load(digest)
    assert workflow.timing is not None and workflow.timing.compiled
    keys = {p.parent.name for p in (tmp_path / "compiled").glob("*/*.cwasm")}
    assert keys == {EngineSettings.for_kind("activity").cache_key(), EngineSettings.for_kind("workflow").cache_key()}


def test_damaged_artifact_is_recompiled(tmp_path: Path, tiny: bytes) -> None:
    """A corrupted or foreign artifact is discarded and the component compiled again."""
    loaded = loader_for(tmp_path).load_bytes(tiny)
    artifact = ComponentCache(tmp_path).compiled_path(loaded.digest, EngineSettings.for_kind("activity").cache_key())
    artifact.write_bytes(b"\x7fELF not really")
    again = loader_for(tmp_path).load(loaded.digest)
    assert again.timing is not None and again.timing.compiled
    assert artifact.read_bytes()[:4] == b"\x7fELF" and len(artifact.read_bytes()) > 100
    third = loader_for(tmp_path).load(loaded.digest)
    assert third.timing is not None and not third.timing.compiled


def test_concurrent_loads_compile_once(tmp_path: Path, tiny: bytes) -> None:
    """Threads loading the same digest at once share one compilation and one loaded component."""
    loader = loader_for(tmp_path)
    digest = loader.cache.put(tiny)
    results = []
    threads = [threading.Thread(target=lambda: results.append(loader.load(digest))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r is results[0] for r in results)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 a zip", "this file is not a WebAssembly binary (it does not start with \\0asm)"),
        (b"\0asm\x01\x00\x00\x00", "this is a core WebAssembly module, not a component"),
    ],
)
def test_non_components_are_refused(tmp_path: Path, data: bytes, message: str) -> None:
    """Files that are not components are refused with a message saying what they are."""
    with pytest.raises(ComponentError) as info:
        loader_for(tmp_path).load_bytes(data)
    assert str(info.value).startswith(message)


def test_broken_component_reports_compile_error(tmp_path: Path, tiny: bytes) -> None:
    """A damaged component fails with a one-line ComponentError naming its digest, not a wasmtime error."""
    broken = tiny[:-7]
    with pytest.raises(ComponentError) as info:
        loader_for(tmp_path).load_bytes(broken)
    assert str(info.value).startswith(f"component {sha256_digest(broken)} does not compile: ")
    assert "\n" not in str(info.value)


def test_unknown_digests_and_files(tmp_path: Path) -> None:
    """Unknown digests and missing files are not-found errors; malformed digests are refused."""
    loader = loader_for(tmp_path)
    with pytest.raises(NotFoundError):
        loader.load("sha256:" + "0" * 64)
    with pytest.raises(IntegrityError):
        loader.load("sha256:xyz")
    with pytest.raises(NotFoundError) as info:
        loader.load_file(tmp_path / "missing.wasm")
    assert "missing.wasm' does not exist" in str(info.value)


def test_second_load_uses_the_compiled_cache(capsys: pytest.CaptureFixture[str]) -> None:
    """A real 18 MB component is compiled at most once; a new loader deserializes it in milliseconds.

    This uses the shared test cache, so the compilation itself happens only on
    the first run; `benchmarks/component_timings.py` measures it from scratch.
    """
    wasm = build_guest("echo", "echo")
    first = new_loader().load_file(wasm)
    second = new_loader().load(first.digest)
    assert first.timing is not None and second.timing is not None
    assert not second.timing.compiled
    assert second.timing.seconds < 1.0
    if first.timing.compiled:
        assert first.timing.seconds > second.timing.seconds
    timings = measure_calls(second)
    with capsys.disabled():
        compiled = f"compile {first.timing.seconds:.2f} s, " if first.timing.compiled else ""
        print(
            f"\n[timings] {wasm.stat().st_size / 1e6:.1f} MB component: {compiled}"
            f"deserialize {second.timing.seconds * 1000:.1f} ms, " + format_timings(timings)
        )


def measure_calls(loaded: LoadedComponent) -> dict[str, float]:
    """Seconds to instantiate, for a first call, a small call (median) and a whole activity-host call (median)."""
    linker = Linker(loaded.engine)
    linker.add_wasip2()
    store = Store(loaded.engine)
    store.set_wasi(WasiConfig())
    store.set_epoch_deadline(2**62)
    start = time.perf_counter()
    instance = linker.instantiate(store, loaded.component)
    instantiate = time.perf_counter() - start
    ffqn = Ffqn.parse("test:echo/prims.echo-u32")
    fn = loaded.info.functions()[ffqn]
    func = find_function(store, instance, ffqn)
    start = time.perf_counter()
    assert call_function(store, func, fn, [1]) == 1
    first_call = time.perf_counter() - start
    small = []
    for i in range(50):
        start = time.perf_counter()
        call_function(store, func, fn, [i])
        small.append(time.perf_counter() - start)
    store.close()
    # The activity host's whole path: fresh store and instance, call, output capture.
    host = ActivityHost(loaded)
    per_call = []
    for i in range(10):
        start = time.perf_counter()
        host.call(ffqn, fn, [i], ActivityLimits())
        per_call.append(time.perf_counter() - start)
    return {
        "instantiate": instantiate,
        "first call": first_call,
        "small call": statistics.median(small),
        "activity host call": statistics.median(per_call),
    }


def format_timings(timings: dict[str, float]) -> str:
    """`name 1.23 ms, ...`."""
    return ", ".join(f"{name} {seconds * 1000:.3f} ms" for name, seconds in timings.items())
