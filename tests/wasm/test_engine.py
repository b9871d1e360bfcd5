"""Engine settings: what goes into the compiled-cache key, workflow determinism, epoch deadlines."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm import engine as engine_module
from dolmen.platform.wasm.activity_host import ActivityHost, ActivityLimits
from dolmen.platform.wasm.engine import EPOCH_TICK_MS, EngineSettings, deadline_ticks
from dolmen.platform.wasm.loader import LoadedComponent
from tests.support.guests import load_guest, new_loader

# A signalling NaN with a payload, and the canonical quiet NaN.
PAYLOAD_NAN = 0x7FF4_0000_0000_0001
CANONICAL_NAN = 0x7FF8_0000_0000_0000


def test_workflow_engines_are_deterministic() -> None:
    """Workflow engines canonicalize NaNs; no engine has threads; both are interruptible by epochs."""
    workflow, activity = EngineSettings.for_kind("workflow"), EngineSettings.for_kind("activity")
    assert workflow.nan_canonicalization and not activity.nan_canonicalization
    assert not workflow.threads and not activity.threads
    assert workflow.epoch_interruption and activity.epoch_interruption


def test_cache_key_covers_settings_and_wasmtime_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Artifacts are keyed by every setting and the wasmtime version, so none is reused across them."""
    workflow, activity = EngineSettings.for_kind("workflow"), EngineSettings.for_kind("activity")
    assert workflow.cache_key() != activity.cache_key()
    assert activity.cache_key() == EngineSettings.for_kind("activity").cache_key()
    assert EngineSettings(max_wasm_stack=1 << 20).cache_key() != activity.cache_key()
    assert version("wasmtime").startswith("50.")
    before = activity.cache_key()
    monkeypatch.setattr(engine_module, "version", lambda _name: "99.0.0")
    assert activity.cache_key() != before


@pytest.mark.parametrize(
    ("timeout_ms", "ticks"),
    [(None, 2**62), (1, 2), (EPOCH_TICK_MS, 2), (EPOCH_TICK_MS + 1, 3), (1000, 1000 // EPOCH_TICK_MS + 1)],
)
def test_deadline_ticks(timeout_ms: int | None, ticks: int) -> None:
    """A time limit becomes whole epoch ticks, rounded up, plus the tick already under way."""
    assert deadline_ticks(timeout_ms) == ticks


def _nan_bits(loaded: LoadedComponent, bits: int) -> int:
    ffqn = Ffqn.parse("test:faults/faults@1.0.0.nan-bits")
    host = ActivityHost(loaded)
    return host.call(ffqn, loaded.info.functions()[ffqn], [bits], ActivityLimits()).result


def test_nan_canonicalization_on_workflow_engines(faults_guest: LoadedComponent) -> None:
    """Float arithmetic in a workflow engine yields the canonical NaN; an activity engine keeps the payload."""
    workflow = load_guest(new_loader("workflow"), "faults", "faulty")
    assert _nan_bits(workflow, PAYLOAD_NAN) == CANONICAL_NAN
    # The activity engine keeps the payload (the hardware only sets the quiet bit).
    assert _nan_bits(faults_guest, PAYLOAD_NAN) == PAYLOAD_NAN | (1 << 51)
