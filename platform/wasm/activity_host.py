"""Run activity functions: a fresh instance per call, real WASI 0.2 and wasi:http.

The linker (the WASI and HTTP definitions) is built once per component and
reused for every instance; each call gets a new store with its own limits,
environment and captured stdout/stderr, so no state leaks between executions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wasmtime import Store, WasiConfig, WasmtimeError
from wasmtime.component import Linker

from ..errors import ComponentError, ExecutionError, TrapError
from ..ffqn import Ffqn
from ..wit.types import FunctionType
from . import _wasmtime_fixes
from .engine import deadline_ticks
from .guest import call_function, find_function, summarize_trap
from .loader import LoadedComponent
from .output import DEFAULT_OUTPUT_LIMIT, CapturedOutput, stderr_summary

_wasmtime_fixes.apply()  # see that module: variant lowering, per-thread host exceptions, fast list<u8>

__all__ = [
    "DEFAULT_OUTPUT_LIMIT",
    "ActivityFailed",
    "ActivityHost",
    "ActivityLimits",
    "ActivityOutcome",
    "CapturedOutput",
]


@dataclass(frozen=True, slots=True)
class ActivityLimits:
    """Per-call limits and grants from the deployment.

    `timeout_ms` is enforced by epoch interruption (to within one epoch tick,
    when an `EpochTicker` advances the engine), `memory_bytes` by the store's
    limiter (a linear memory cannot grow past it); None means unlimited.
    """

    timeout_ms: int | None = 60_000
    memory_bytes: int | None = 512 * 1024 * 1024
    env: Mapping[str, str] = field(default_factory=dict)
    output_limit: int = DEFAULT_OUTPUT_LIMIT


@dataclass(frozen=True, slots=True)
class ActivityOutcome:
    """A returned value (JSON) and what the guest printed."""

    result: Any
    output: dict[str, str]


class ActivityFailed(Exception):
    """A call failed; carries the Dolmen error and the captured output."""

    def __init__(self, error: ExecutionError, output: dict[str, str]) -> None:
        super().__init__(str(error))
        self.error = error
        self.output = output


class ActivityHost:
    """Calls exports of one activity component in fresh instances."""

    def __init__(self, loaded: LoadedComponent) -> None:
        self.loaded = loaded
        self.linker = Linker(loaded.engine)
        try:
            self.linker.add_wasip2()
            self.linker.add_wasi_http()
        except WasmtimeError as exc:
            raise ComponentError(f"cannot set up WASI for component {loaded.digest}: {exc}") from None

    def call(self, ffqn: Ffqn, fn: FunctionType, params: list[Any], limits: ActivityLimits) -> ActivityOutcome:
        """Instantiate, call `ffqn` with canonical JSON params, return its JSON result.

        Raises `ActivityFailed` for traps, timeouts and components that cannot
        be instantiated, and `ComponentError` when `ffqn` is not exported.
        """
        output = CapturedOutput(limits.output_limit)
        store = Store(self.loaded.engine)
        failure: ExecutionError | None = None
        result: Any = None
        try:
            wasi = WasiConfig()
            wasi.env = [(k, v) for k, v in limits.env.items()]
            output.attach(wasi)
            store.set_wasi(wasi)
            store.set_wasi_http()
            if limits.memory_bytes is not None:
                store.set_limits(memory_size=limits.memory_bytes)
            store.set_epoch_deadline(deadline_ticks(limits.timeout_ms))
            try:
                instance = self.linker.instantiate(store, self.loaded.component)
            except WasmtimeError as exc:
                failure = self._instantiation_failure(exc)
            else:
                func = find_function(store, instance, ffqn)
                try:
                    result = call_function(store, func, fn, params, timeout_ms=limits.timeout_ms)
                except ExecutionError as exc:
                    failure = exc
        finally:
            # Free the store now rather than when the garbage collector gets
            # to it (a failure's traceback keeps it alive), and wait until
            # wasmtime has released the output callbacks: see `output`.
            store.close()
            output.wait_released()
        if failure is not None:
            failure.message = _explain(failure.message, output, limits)
            failure.args = (failure.message,)
            raise ActivityFailed(failure, output.text())
        return ActivityOutcome(result, output.text())

    def _instantiation_failure(self, exc: WasmtimeError) -> ExecutionError:
        text = str(exc).strip()
        missing = _MISSING_IMPORT.search(text)
        if missing:
            # A link error: no guest code ran, and trying again cannot help.
            return ExecutionError(
                f"component {self.loaded.digest} cannot be instantiated: it imports "
                f"`{missing['name']}`, which an activity host does not provide "
                "(activities get WASI 0.2 and wasi:http only)"
            )
        return TrapError(f"instantiation of component {self.loaded.digest} failed: {summarize_trap(text)}")


_MISSING_IMPORT = re.compile(r"component imports (?:instance|func|resource|module|type) `(?P<name>[^`]+)`")


def _explain(message: str, output: CapturedOutput, limits: ActivityLimits) -> str:
    """Add what the guest's stderr says, and a hint when memory ran out."""
    summary = stderr_summary(output.stderr)
    if summary:
        message = f"{message}; {summary}"
    if limits.memory_bytes is not None and b"MemoryError" in output.stderr:
        message += f" (the activity's memory limit is {limits.memory_bytes // (1024 * 1024)} MiB)"
    return message
