"""Run activity functions: a fresh instance per call, real WASI 0.2 and wasi:http.

The linker (the WASI and HTTP definitions) is built once per component and
reused for every instance; each call gets a new store with its own limits,
environment and captured stdout/stderr, so no state leaks between executions.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wasmtime import Store, WasiConfig, WasmtimeError
from wasmtime.component import Linker

from ..errors import ComponentError, ExecutionError, TrapError
from ..ffqn import Ffqn
from ..wit.types import FunctionType
from .engine import deadline_ticks
from .guest import call_function, find_function
from .loader import LoadedComponent

DEFAULT_OUTPUT_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class ActivityLimits:
    """Per-call limits and grants from the deployment."""

    timeout_ms: int | None = 60_000
    memory_bytes: int | None = 512 * 1024 * 1024
    env: Mapping[str, str] = field(default_factory=dict)
    output_limit: int = DEFAULT_OUTPUT_LIMIT


@dataclass(slots=True)
class CapturedOutput:
    """The guest's stdout and stderr, bounded."""

    limit: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def writer(self, buffer: bytearray) -> Any:
        def write(data: Any) -> None:
            room = self.limit - len(buffer)
            chunk = bytes(data)
            if len(chunk) > room:
                self.truncated = True
                chunk = chunk[: max(room, 0)]
            buffer.extend(chunk)

        return write

    def text(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.stdout:
            out["stdout"] = self.stdout.decode("utf-8", "replace")
        if self.stderr:
            out["stderr"] = self.stderr.decode("utf-8", "replace")
        return out


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

        Raises `ActivityFailed` for traps and timeouts.
        """
        output = CapturedOutput(limits.output_limit)
        store = Store(self.loaded.engine)
        try:
            wasi = WasiConfig()
            wasi.env = [(k, v) for k, v in limits.env.items()]
            wasi.stdout_custom = output.writer(output.stdout)
            wasi.stderr_custom = output.writer(output.stderr)
            store.set_wasi(wasi)
            store.set_wasi_http()
            if limits.memory_bytes is not None:
                store.set_limits(memory_size=limits.memory_bytes)
            store.set_epoch_deadline(deadline_ticks(limits.timeout_ms))
            try:
                instance = self.linker.instantiate(store, self.loaded.component)
            except WasmtimeError as exc:
                raise ActivityFailed(
                    TrapError(f"instantiation of component {self.loaded.digest} failed: {str(exc).splitlines()[0]}"),
                    output.text(),
                ) from None
            func = find_function(store, instance, ffqn)
            try:
                result = call_function(store, func, fn, params, timeout_ms=limits.timeout_ms)
            except ExecutionError as exc:
                exc.message = _with_stderr(exc.message, output)
                exc.args = (exc.message,)
                raise ActivityFailed(exc, output.text()) from None
            return ActivityOutcome(result, output.text())
        finally:
            # Drop the store now: wasmtime's stdout callbacks must not outlive
            # the interpreter, and memory should return promptly.
            del store
            gc.collect(0)


def _with_stderr(message: str, output: CapturedOutput) -> str:
    tail = output.stderr.decode("utf-8", "replace").strip().splitlines()[-6:]
    if not tail:
        return message
    return message + "; guest stderr: " + " | ".join(line.strip() for line in tail)
