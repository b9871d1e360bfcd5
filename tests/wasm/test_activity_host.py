"""The activity host: fresh instances, err results, traps, time and memory limits, env, output."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dolmen.platform.errors import ComponentError, ExecutionTimeoutError, TrapError
from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.activity_host import ActivityFailed, ActivityHost, ActivityLimits, ActivityOutcome
from dolmen.platform.wasm.engine import EpochTicker
from dolmen.platform.wasm.loader import LoadedComponent
from tests.support.guests import DATA_DIR, TESTS

FAULTS = "test:faults/faults@1.0.0"


@pytest.fixture(scope="module")
def ticker() -> Iterator[EpochTicker]:
    """An epoch ticker, so time limits are enforced."""
    t = EpochTicker()
    yield t
    t.stop()


@pytest.fixture(scope="module")
def faults(faults_guest: LoadedComponent, ticker: EpochTicker) -> Iterator[ActivityHost]:
    """An activity host for the faults component, its engine ticked."""
    ticker.add(faults_guest.engine)
    host = ActivityHost(faults_guest, spares=1)
    yield host
    host.close()


def call(host: ActivityHost, function: str, params: list[Any], **limits: Any) -> ActivityOutcome:
    """Call `function` of the faults interface with canonical params."""
    ffqn = Ffqn.parse(f"{FAULTS}.{function}")
    return host.call(ffqn, host.loaded.info.functions()[ffqn], params, ActivityLimits(**limits))


def failure(host: ActivityHost, function: str, params: list[Any], **limits: Any) -> ActivityFailed:
    """The failure of a call that must fail."""
    with pytest.raises(ActivityFailed) as info:
        call(host, function, params, **limits)
    return info.value


def test_err_result_is_a_value_not_a_failure(faults: ActivityHost) -> None:
    """A function returning `err` completes normally with {"err": ...}."""
    assert call(faults, "divide", [7, 2]).result == {"ok": 3}
    assert call(faults, "divide", [1, 0]).result == {"err": "cannot divide 1 by zero"}


def test_guest_exception_is_a_readable_trap(faults: ActivityHost) -> None:
    """A Python exception in the guest becomes a TrapError naming the export and the exception."""
    failed = failure(faults, "fail", ["boom"])
    assert isinstance(failed.error, TrapError)
    assert failed.error.retryable
    assert failed.error.message == (
        "the guest panicked or aborted (wasm `unreachable` executed) in test:faults/faults@1.0.0#fail; "
        "the guest raised RuntimeError: boom"
    )
    assert "RuntimeError: boom" in failed.output["stderr"]


def test_infinite_loop_is_interrupted_at_the_deadline(faults: ActivityHost) -> None:
    """A guest that never returns is stopped by epoch interruption shortly after its time limit."""
    start = time.monotonic()
    failed = failure(faults, "spin", [], timeout_ms=200)
    elapsed = time.monotonic() - start
    assert isinstance(failed.error, ExecutionTimeoutError)
    assert failed.error.message.startswith("the guest ran past its time limit of 200 ms and was interrupted")
    assert 0.2 <= elapsed < 5


def test_memory_limit_stops_a_growing_guest(faults: ActivityHost) -> None:
    """A guest growing past its memory limit fails, and the message mentions the limit."""
    assert call(faults, "allocate", [8], memory_bytes=64 * 1024 * 1024).result == 8
    failed = failure(faults, "allocate", [100], memory_bytes=64 * 1024 * 1024)
    assert isinstance(failed.error, TrapError)
    assert "MemoryError" in failed.error.message
    assert failed.error.message.endswith("(the activity's memory limit is 64 MiB)")
    assert call(faults, "allocate", [100], memory_bytes=256 * 1024 * 1024).result == 100


def test_only_granted_environment_variables_are_visible(faults: ActivityHost) -> None:
    """The guest sees exactly the env vars its limits grant."""
    assert call(faults, "env", ["TOKEN"], env={"TOKEN": "s3cret"}).result == "s3cret"
    assert call(faults, "env", ["TOKEN"]).result is None
    assert call(faults, "env", ["HOME"]).result is None


def test_output_is_captured_and_bounded(faults: ActivityHost) -> None:
    """stdout and stderr are captured per call, cut at the output limit and marked as cut."""
    outcome = call(faults, "chatty", ["hi"])
    assert outcome.result == "HI"
    assert outcome.output == {"stdout": "out: hi\n", "stderr": "err: hi\n"}
    marker = "\n[output truncated: 96 more bytes not kept; the limit is 10 bytes per stream]\n"
    assert call(faults, "chatty", ["x" * 100], output_limit=10).output == {
        "stdout": "out: xxxxx" + marker,
        "stderr": "err: xxxxx" + marker,
    }


def test_a_long_print_is_captured_whole(faults: ActivityHost) -> None:
    """One print() of 20,000 characters is captured entirely on both streams (it was cut at 8,192 bytes)."""
    assert faults.loaded.prints  # it imports WASI stdout and stderr: its output goes through pipes
    outcome = call(faults, "long-print", ["x", 20_000])
    assert outcome.result == 20_001
    assert outcome.output == {"stdout": "x" * 20_000 + "\n", "stderr": "x" * 20_000 + "\n"}


def test_output_past_the_limit_is_cut_on_a_character_and_marked(faults: ActivityHost) -> None:
    """A stream keeps every whole character up to its limit, then says how many bytes it dropped."""
    outcome = call(faults, "long-print", ["€", 5_000], output_limit=10_000)  # 15,001 bytes; 10,000 splits a €
    assert outcome.result == 15_001
    kept = "€" * 3_333
    marker = f"\n[output truncated: {15_001 - len(kept.encode())} more bytes not kept; the limit is 10000 bytes per stream]\n"
    assert outcome.output == {"stdout": kept + marker, "stderr": kept + marker}


def test_a_print_past_64_kib_keeps_every_character_up_to_the_limit(faults: ActivityHost) -> None:
    """One print() longer than the default limit keeps its first 64 KiB, cut on a character and marked."""
    outcome = call(faults, "long-print", ["€", 30_000])  # 90,001 bytes; 65,536 is not a multiple of 3
    for stream in ("stdout", "stderr"):
        assert outcome.output[stream].startswith("€" * (65_536 // 3) + "\n[output truncated: "), stream
        assert "\ufffd" not in outcome.output[stream]


def test_an_exception_after_much_stderr_is_still_named(faults: ActivityHost) -> None:
    """A traceback printed past the output limit still names the exception in the failure."""
    failed = failure(faults, "fail-after-noise", [100_000, "late boom"])
    assert failed.error.message.endswith("; the guest raised RuntimeError: late boom")
    assert "[output truncated:" in failed.output["stderr"]


def test_each_call_gets_a_fresh_instance(faults: ActivityHost) -> None:
    """A trap leaves nothing behind: the next call runs in a new, healthy instance."""
    failure(faults, "fail", ["first"])
    assert call(faults, "divide", [9, 3]).result == {"ok": 3}


def test_unknown_function_is_a_component_error(faults: ActivityHost) -> None:
    """Calling a function the component does not export is a ComponentError, not a trap."""
    ffqn = Ffqn.parse(f"{FAULTS}.nope")
    fn = faults.loaded.info.functions()[Ffqn.parse(f"{FAULTS}.spin")]
    with pytest.raises(ComponentError, match="has no function 'nope'"):
        faults.call(ffqn, fn, [], ActivityLimits())


def test_missing_import_is_a_permanent_failure(greeter_v2_guest: LoadedComponent) -> None:
    """A component importing an interface the host lacks fails without retry, naming the import."""
    host = ActivityHost(greeter_v2_guest)
    ffqn = Ffqn.parse("test:greeter/greet@2.0.0.greet")
    with pytest.raises(ActivityFailed) as info:
        host.call(ffqn, greeter_v2_guest.info.functions()[ffqn], ["bob", True], ActivityLimits())
    error = info.value.error
    assert error.kind == "failed" and not error.retryable
    assert error.message == (
        f"component {greeter_v2_guest.digest} cannot be instantiated: it imports `test:greeter/audit@2.0.0`, "
        "which an activity host does not provide (activities get WASI 0.2 and wasi:http only)"
    )


SCRIPT = """
import sys
from pathlib import Path
from dolmen.platform.ffqn import Ffqn
from dolmen.platform.wasm.activity_host import ActivityFailed, ActivityHost, ActivityLimits
from dolmen.platform.wasm.engine import EngineSettings
from dolmen.platform.wasm.loader import ComponentLoader
from dolmen.platform.wasm.cache import ComponentCache
loaded = ComponentLoader(ComponentCache(Path(sys.argv[1])), EngineSettings.for_kind("activity")).load(sys.argv[2])
ffqn = Ffqn.parse("test:faults/faults@1.0.0.fail")
try:
    ActivityHost(loaded).call(ffqn, loaded.info.functions()[ffqn], ["boom"], ActivityLimits())
except ActivityFailed as failed:
    error = failed
sys.exit(3)
"""


def test_process_exits_cleanly_after_a_trap(faults_guest: LoadedComponent) -> None:
    """A process that saw a trap exits normally: wasmtime's output threads are done before shutdown.

    Before the fix, about half of such exits aborted (status 134) in a wasmtime
    runtime thread that called back into a finalizing interpreter; six clean
    exits in a row would then happen about once in 64 runs.
    """
    for _ in range(6):
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(DATA_DIR), faults_guest.digest],
            cwd=TESTS.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 3, proc.stderr[-2000:]


# ------------------------------------------------------------------ instances


def test_every_call_gets_a_fresh_instance_by_default(faults: ActivityHost) -> None:
    """Spares are made ahead of time, but no instance ever serves a second call."""
    assert [call(faults, "count", []).result for _ in range(4)] == [1, 1, 1, 1]


def test_reused_instances_keep_state_and_capture_each_calls_output(faults: ActivityHost) -> None:
    """With reuse an instance serves later calls (its globals carry over); each call gets its own output."""
    outcomes = [call(faults, "count", [], reuse_instances=True) for _ in range(3)]
    assert [o.result for o in outcomes] == [1, 2, 3]
    assert [o.output for o in outcomes] == [{"stdout": f"call {n}\n"} for n in (1, 2, 3)]


def test_reused_instance_is_dropped_after_a_trap_and_after_max_uses(faults: ActivityHost) -> None:
    """A trap or timeout ends an instance; so does its last allowed use."""
    limits = {"reuse_instances": True, "max_instance_uses": 3, "env": {"SLOT": "trap"}}
    assert [call(faults, "count", [], **limits).result for _ in range(2)] == [1, 2]
    failure(faults, "fail", ["boom"], **limits)  # the instance that counted 2 served this one and trapped
    assert [call(faults, "count", [], **limits).result for _ in range(4)] == [1, 2, 3, 1]
    failure(faults, "spin", [], timeout_ms=50, **limits)
    assert call(faults, "count", [], **limits).result == 1


def test_reuse_is_per_environment(faults: ActivityHost) -> None:
    """Calls with another environment (another revision's `env`) never share an instance."""
    assert call(faults, "env", ["WHO"], reuse_instances=True, env={"WHO": "a"}).result == "a"
    assert call(faults, "env", ["WHO"], reuse_instances=True, env={"WHO": "b"}).result == "b"
    assert call(faults, "env", ["WHO"], reuse_instances=True, env={"WHO": "a"}).result == "a"
