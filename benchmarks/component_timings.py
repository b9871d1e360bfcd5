"""Measure what loading and calling a componentize-py component costs.

    .venv/bin/python benchmarks/component_timings.py [--runs 3]

Builds tests/components/echo (cached by content hash in tests/.components),
then for each run: compiles it into an empty data directory, deserializes the
cached artifact with a new engine, instantiates it, and times a first call, a
small call and a whole activity-host call (fresh store and instance each).
Results are printed and written to benchmarks/results/component_timings.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from wasmtime import Store, WasiConfig
from wasmtime.component import Linker

from dolmen.platform.build import build_python_guest
from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.activity_host import ActivityHost, ActivityLimits
from dolmen.platform.wasm.engine import EngineSettings
from dolmen.platform.wasm.guest import call_function, find_function
from dolmen.platform.wasm.loader import ComponentLoader
from dolmen.platform.wasm.cache import ComponentCache

REPO = Path(__file__).resolve().parents[1]
FFQN = Ffqn.parse("test:echo/prims.echo-u32")


def one_run(wasm: Path) -> dict[str, float]:
    """Seconds for each step, compiling from scratch in a temporary data directory."""
    with tempfile.TemporaryDirectory(prefix="dolmen-bench-") as tmp:
        cache = ComponentCache(Path(tmp))
        settings = EngineSettings.for_kind("activity")
        first = ComponentLoader(cache, settings).load_file(wasm)
        loaded = ComponentLoader(cache, settings).load(first.digest)
        assert first.timing and first.timing.compiled and loaded.timing and not loaded.timing.compiled
        linker = Linker(loaded.engine)
        linker.add_wasip2()
        store = Store(loaded.engine)
        store.set_wasi(WasiConfig())
        store.set_epoch_deadline(2**62)
        start = time.perf_counter()
        instance = linker.instantiate(store, loaded.component)
        instantiate = time.perf_counter() - start
        fn = loaded.info.functions()[FFQN]
        func = find_function(store, instance, FFQN)
        start = time.perf_counter()
        call_function(store, func, fn, [1])
        first_call = time.perf_counter() - start
        small: list[float] = []
        for i in range(200):
            start = time.perf_counter()
            call_function(store, func, fn, [i])
            small.append(time.perf_counter() - start)
        store.close()
        host = ActivityHost(loaded)
        per_call: list[float] = []
        for i in range(50):
            start = time.perf_counter()
            host.call(FFQN, fn, [i], ActivityLimits())
            per_call.append(time.perf_counter() - start)
        return {
            "compile_s": first.timing.seconds,
            "deserialize_ms": loaded.timing.seconds * 1000,
            "instantiate_ms": instantiate * 1000,
            "first_call_ms": first_call * 1000,
            "small_call_ms": statistics.median(small) * 1000,
            "activity_host_call_ms": statistics.median(per_call) * 1000,
        }


def main() -> None:
    """Run the measurements and report them."""
    parser = argparse.ArgumentParser(description="Measure loading and calling a component.")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    wasm = build_python_guest(REPO / "tests/components/echo", "echo", cache_dir=REPO / "tests/.components").path
    runs = [one_run(wasm) for _ in range(args.runs)]
    summary: dict[str, Any] = {
        "component_mb": round(wasm.stat().st_size / 1e6, 1),
        "runs": runs,
        "median": {k: statistics.median(r[k] for r in runs) for k in runs[0]},
    }
    for key, value in summary["median"].items():
        print(f"{key:>24}: {value:.3f}")
    out = REPO / "benchmarks/results/component_timings.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
