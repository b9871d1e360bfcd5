"""Run activity functions: a fresh instance per call (or a reused one, opt-in), real WASI 0.2 and wasi:http.

The linker (the WASI and HTTP definitions) is built once per component and
reused for every instance. By default each call gets an instance nobody used
before, with its own store, limits and environment, so no state leaks between
executions; spares are made ahead of time in the background (see
`instances`). With `reuse_instances` an instance that returned normally
serves later calls too. Each call captures its own stdout and stderr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from wasmtime import Store, WasiConfig, WasmtimeError
from wasmtime.component import Linker

from ..errors import ComponentError, ExecutionError, TrapError
from ..ffqn import Ffqn
from ..wit.limits import DEFAULT_MAX_VALUE_BYTES
from ..wit.types import FunctionType
from . import _wasmtime_fixes
from .egress import EgressPolicy
from .guard import StoreWatch
from .guest import call_function, summarize_trap
from .instances import InstanceSlot, OutputSwitch, Ready
from .interruption import Interruption, watch_epochs
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

    `timeout_ms` is enforced by the call's `Interruption` (to within one
    epoch tick when an `EpochTicker` advances the engine, also while the guest
    waits in WASI: see `guard`), `memory_bytes` by the store's limiter (a
    linear memory cannot grow past it); None means unlimited.
    `reuse_instances` lets an instance that returned normally serve up to
    `max_instance_uses` calls (see `instances` for what that shares).
    A result over `max_value_bytes` of JSON fails the call (see `wit.limits`).
    `egress` decides on each outgoing HTTP request (see `egress`; by default
    public destinations only); a refused one is named in the failure message
    and on the call's stderr.
    """

    timeout_ms: int | None = 60_000
    memory_bytes: int | None = 512 * 1024 * 1024
    env: Mapping[str, str] = field(default_factory=dict)
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    reuse_instances: bool = False
    max_instance_uses: int = 1000
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    # Where `timeout_ms` comes from, for the message of a timeout.
    timeout_setting: str = "`timeout` in the deployment"

    def slot_key(self) -> tuple[object, ...]:
        """What an instance is made with: calls with equal keys may share instances.

        The egress policy is part of it: a start function's requests were checked by the policy it was made with.
        """
        return (tuple(sorted(self.env.items())), self.memory_bytes, self.reuse_instances, self.max_instance_uses, self.egress)


@dataclass(frozen=True, slots=True)
class ActivityOutcome:
    """A returned value (canonical JSON) and what the guest printed: `output` maps `stdout`/`stderr` to text."""

    result: Any
    output: dict[str, str]


class ActivityFailed(Exception):
    """A call failed; carries the Dolmen error (`TrapError`, `ExecutionTimeoutError`, `CancelledError`,
    `ValueTooLargeError`, or a plain `ExecutionError` for a missing import) and the captured output."""

    def __init__(self, error: ExecutionError, output: dict[str, str]) -> None:
        super().__init__(str(error))
        self.error = error
        self.output = output


class ActivityHost:
    """Calls exports of one activity component, each call in an instance of its own by default.

    `background` closes used stores and makes `spares` instances ahead of
    time per configuration; by default a thread of this host's own. A host
    that keeps instances (spares, or reuse) must be closed with `close()`
    before the interpreter exits: see `output` for why. Raises
    `ComponentError` when WASI cannot be linked for the component.
    """

    def __init__(self, loaded: LoadedComponent, background: ThreadPoolExecutor | None = None, *, spares: int = 0) -> None:
        self.loaded = loaded
        self.linker = Linker(loaded.engine)
        try:
            self.linker.add_wasip2()
            self.linker.add_wasi_http()
            if loaded.guard is not None:
                loaded.guard.shadow(self.linker)
        except WasmtimeError as exc:
            raise ComponentError(f"cannot set up WASI for component {loaded.digest}: {exc}") from None
        self._spares = spares
        self._own_background = background is None
        self._background = background or ThreadPoolExecutor(1, thread_name_prefix="dolmen-instances")
        self._slots: dict[tuple[object, ...], InstanceSlot] = {}

    def call(
        self,
        ffqn: Ffqn,
        fn: FunctionType,
        params: list[Any],
        limits: ActivityLimits,
        interruption: Interruption | None = None,
    ) -> ActivityOutcome:
        """Call `ffqn` with canonical JSON params in a ready instance, return its JSON result.

        `interruption` (made from `limits.timeout_ms` when not given) lets
        another thread cancel the call; its clock starts when the call does.
        Raises `ActivityFailed` for traps, timeouts, cancellations and
        components that cannot be instantiated, and `ComponentError` when
        `ffqn` is not exported.
        """
        interruption = interruption or Interruption(limits.timeout_ms, limits.timeout_setting)
        output = CapturedOutput(limits.output_limit)
        slot = self._slot(limits)
        failure: ExecutionError | None = None
        refused: list[str] = []
        result: Any = None
        try:
            ready = slot.take()
        except WasmtimeError as exc:
            failure = self._instantiation_failure(exc)
        else:
            ok = False
            ready.output.target = output.write
            watch = ready.watch
            watch.egress = limits.egress.check
            watch.refused.clear()  # a reused instance's list holds the previous call's refusals
            interruption.start()
            watch.current = interruption
            ready.store.set_epoch_deadline(interruption.ticks())
            try:
                interruption.check()
                result = call_function(
                    ready.store,
                    ready.func(ffqn),
                    fn,
                    params,
                    timeout_ms=limits.timeout_ms,
                    max_value_bytes=limits.max_value_bytes,
                )
                ok = True
            except ExecutionError as exc:
                # The interruption knows why the guest stopped; the trap only that it did.
                failure = interruption.error() or exc
            finally:
                watch.current = None
                refused = list(watch.refused)  # before the instance is given back to other calls
                if ok:
                    slot.give_back(ready, ok=True)
                else:
                    # Closed here, not in the background: a trap's last output
                    # must be captured before it is read below.
                    slot.discard(ready)
        if failure is not None:
            failure.message = _explain(failure.message, output, limits) + "".join(f"; {r}" for r in refused)
            failure.args = (failure.message,)
        for refusal in refused:
            # After the guest's own output, and also when the guest swallowed the error and returned.
            output.write("stderr", f"[dolmen] {refusal}\n".encode())
        if failure is not None:
            raise ActivityFailed(failure, output.text())
        return ActivityOutcome(result, output.text())

    def close(self) -> None:
        """Free the idle instances (and this host's background thread)."""
        for slot in list(self._slots.values()):
            slot.close()
        if self._own_background:
            self._background.shutdown(wait=True)

    def _slot(self, limits: ActivityLimits) -> InstanceSlot:
        key = limits.slot_key()
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots.setdefault(
                key,
                InstanceSlot(
                    lambda: self._instantiate(limits),
                    self._background,
                    spares=self._spares,
                    reuse=limits.reuse_instances,
                    max_uses=limits.max_instance_uses,
                ),
            )
        return slot

    def _instantiate(self, limits: ActivityLimits) -> Ready:
        """A new store with this component instantiated under `limits` (raises `WasmtimeError`)."""
        watch = StoreWatch(self.loaded.guard)
        store = Store(self.loaded.engine, watch)
        output = OutputSwitch(self.loaded.pump)
        try:
            watch_epochs(store)
            wasi = WasiConfig()
            wasi.env = [(k, v) for k, v in limits.env.items()]
            if self.loaded.prints:  # a component that cannot print needs no pipes (two per instance)
                output.attach(wasi)
            store.set_wasi(wasi)
            store.set_wasi_http()
            if limits.memory_bytes is not None:
                store.set_limits(memory_size=limits.memory_bytes)
            # Start functions run at instantiation; a spare's clock starts again at its call.
            watch.egress = limits.egress.check
            watch.current = Interruption(limits.timeout_ms, limits.timeout_setting)
            watch.current.start()
            store.set_epoch_deadline(watch.current.ticks())
            instance = self.linker.instantiate(store, self.loaded.component)
        except BaseException:
            store.close()
            output.close()
            raise
        finally:
            watch.current = None
        return Ready(store, instance, output, watch)

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
    # The tail, not the kept output: a traceback printed after 64 KiB of stderr still counts.
    summary = stderr_summary(output.stderr_tail)
    if summary:
        message = f"{message}; {summary}"
    if limits.memory_bytes is not None and b"MemoryError" in output.stderr_tail:
        message += f" (the activity's memory limit is {limits.memory_bytes // (1024 * 1024)} MiB)"
    return message
