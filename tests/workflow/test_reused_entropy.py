"""A reused workflow instance draws the host's randomness from the same place in the execution's stream as a fresh one.

componentize-py reseeds CPython's `random` on an instance's first call (2,496
bytes of WASI entropy); a reused instance does not, so the runner draws that
reseed itself (`RunContext.redraw`). Only the reseed: what the code draws
itself before its first host call (`os.urandom`, `uuid4`) is the code's, and
must come out the same on a fresh and on a reused instance.
"""

from __future__ import annotations

import json

import pytest

from dolmen.platform.store.records import Event
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.workflow.run_context import RunContext
from dolmen.platform.workflow.replay import Replay
from dolmen.platform.workflow.sandbox import CPYTHON_RESEED, WorkflowSandbox, runtime_prologue
from dolmen.platform.workflow.verify import VerifyDriver
from tests.support.guests import load_guest, new_loader

FLOWS = "testing:entropy/flows@1.0.0"
SEEDS = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210", "00112233445566778899aabbccddeeff"]


@pytest.fixture(scope="module")
def entropy() -> LoadedComponent:
    return load_guest(new_loader("workflow"), "wf-entropy", "entropy")


def run(sandbox: WorkflowSandbox, loaded: LoadedComponent, function: str, seed: str, reuse: int) -> dict[str, object]:
    execution_id = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
    ffqn = f"{FLOWS}.{function}"
    events = [Event(0, "created", {"ffqn": ffqn, "params": [], "seed": seed}, 1000, "1-0")]
    ctx = RunContext(execution_id, ffqn, Replay(execution_id, events), VerifyDriver())
    return json.loads(sandbox.invoke(loaded, ctx, timeout_ms=60_000, memory_bytes=None, reuse=reuse))


@pytest.mark.parametrize("first", ["early", "late"])
def test_early_and_late_draws_match_a_fresh_instance(entropy: LoadedComponent, first: str) -> None:
    """Whichever function an instance served first, every later run draws what a fresh instance would."""
    fresh = WorkflowSandbox()
    reused = WorkflowSandbox()
    try:
        run(reused, entropy, first, SEEDS[2], reuse=100)  # the instance's first run
        for seed in SEEDS:
            for function in ("early", "late"):
                assert run(reused, entropy, function, seed, reuse=100) == run(fresh, entropy, function, seed, reuse=0)
        assert run(fresh, entropy, "early", SEEDS[0], reuse=0) != run(fresh, entropy, "early", SEEDS[1], reuse=0)
    finally:
        fresh.close()
        reused.close()


def test_only_the_cpython_reseed_counts_as_the_runtime_s() -> None:
    assert runtime_prologue([*CPYTHON_RESEED, 8, 16]) == CPYTHON_RESEED
    assert runtime_prologue([8, 16]) == ()
    assert runtime_prologue([]) == ()
    assert sum(CPYTHON_RESEED) == 624 * 4, "the Mersenne Twister's state"
