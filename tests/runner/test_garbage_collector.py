"""A runner process's garbage-collector settings (`collector.settle_garbage_collector`), in a process of its own:
they are process-wide, so they are set by the runner's entry point, never by a runner served inside a test."""

from __future__ import annotations

import json
import subprocess
import sys

from dolmen.platform.runner import process

CHECK = """
import gc, json
from dolmen.platform.runner import collector
before = (gc.get_threshold(), gc.get_freeze_count())
collector.settle_garbage_collector()
print(json.dumps({"before": before, "after": (gc.get_threshold(), gc.get_freeze_count())}))
"""


def test_a_runner_process_freezes_what_it_loaded_and_collects_young_objects_less_often() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60)
    seen = json.loads(out.stdout)
    assert seen["before"][0] == [700, 10, 10] and seen["before"][1] == 0
    threshold, frozen = seen["after"]
    assert threshold == [20_000, 20, 20]
    assert frozen > 1000, "the modules loaded at start are out of the collector's reach"


def test_serving_a_runner_in_this_process_leaves_its_collector_alone() -> None:
    """`Runner.serve` does not touch the collector: only `serve_runner`, the process's entry point, does."""
    source = process.Runner.serve.__code__.co_names
    assert "settle_garbage_collector" not in source and "gc" not in source
    assert "settle_garbage_collector" in process.serve_runner.__code__.co_names
