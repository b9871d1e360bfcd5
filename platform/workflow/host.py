"""The wasmtime linker for a workflow component.

Built once per component digest and shared by every run: the host functions
find the run they serve through a thread-local binding, because the thread
that calls into wasm is the one that runs the host functions it calls.

What a workflow gets:
- `dolmen:workflow/types` and `/host` (see `platform/wit/dolmen-workflow.wit`);
- for every other imported interface `ns:pkg/iface@v`, each function becomes a
  blocking call of the child execution `ns:pkg/iface@v.fn`;
- for every `ns:pkg-dolmen-ext/iface@v`, the `-submit`, `-await-next`, `-get`
  and `-schedule` extension functions of `ns:pkg/iface@v`;
- WASI with no environment, no preopened directories and no network, with
  `random` replaced by a PRNG seeded from the seed its `created` event
  records (see `ids.py`) and the clocks replaced by the log's logical time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from wasmtime import WasmtimeError
from wasmtime.component import Linker, LinkerInstance, Record, ResourceHost, ResourceType

from ..errors import ComponentError, ContinueAsNewError, InvalidValueError, UsageError
from ..ffqn import Ffqn, InterfaceName
from ..wasm.introspect import InterfaceInfo
from ..wasm.loader import LoadedComponent
from ..wit.codec import canonical_params, from_wasm, to_wasm
from ..wit.types import FunctionType, ResourceT, ResultT, TupleT
from .run_context import RunContext

HOST_PACKAGE = "dolmen:workflow"
HOST_VERSION = "1.0.0"
TYPES_INTERFACE = f"{HOST_PACKAGE}/types@{HOST_VERSION}"
HOST_INTERFACE = f"{HOST_PACKAGE}/host@{HOST_VERSION}"
EXT_SUFFIX = "-dolmen-ext"
JOIN_SET_TYPE = 0x0D01


class _Binding(threading.local):
    ctx: RunContext | None = None


_binding = _Binding()


@contextmanager
def bound(ctx: RunContext) -> Iterator[RunContext]:
    """Make `ctx` the run served by host functions called from this thread."""
    previous = _binding.ctx
    _binding.ctx = ctx
    try:
        yield ctx
    finally:
        _binding.ctx = previous


def _ctx() -> RunContext:
    ctx = _binding.ctx
    if ctx is None:  # pragma: no cover - host functions only run inside `bound`
        raise RuntimeError("workflow host function called outside a run")
    return ctx


def target_interface(ext: InterfaceName) -> InterfaceName:
    """`ns:pkg-dolmen-ext/iface@v` -> `ns:pkg/iface@v`."""
    return InterfaceName(ext.namespace, ext.package.removesuffix(EXT_SUFFIX), ext.interface, ext.version)


class WorkflowLinker:
    """A linker with Dolmen's workflow host for one component.

    Raises `ComponentError` when the component imports what a workflow cannot
    have: an interface that is not WIT's, another version of
    `dolmen:workflow`, or one wasmtime cannot link.
    """

    def __init__(self, loaded: LoadedComponent) -> None:
        self.loaded = loaded
        self.linker = Linker(loaded.engine)
        try:
            self.linker.add_wasip2()
            self.linker.allow_shadowing = True
            with self.linker.root() as root:
                for iface in loaded.info.imports:
                    self._define(root, iface)
        except WasmtimeError as exc:
            raise ComponentError(f"cannot link workflow component {loaded.digest}: {exc}") from None

    # ------------------------------------------------------------ dispatch

    def _define(self, root: LinkerInstance, iface: InterfaceInfo) -> None:
        name = iface.name
        if name.startswith("wasi:"):
            self._shadow_wasi(root, iface)
            return
        parsed = InterfaceName.try_parse(name)
        if parsed is None:
            raise ComponentError(f"workflow imports '{name}', which is not a WIT interface Dolmen can provide")
        if parsed.package_name == HOST_PACKAGE:
            if parsed.version != HOST_VERSION:
                raise ComponentError(
                    f"workflow imports {name}, but this Dolmen provides {HOST_PACKAGE}@{HOST_VERSION}; "
                    "regenerate the workflow's WIT with `platform wit host`"
                )
            if parsed.interface == "types":
                self._define_types(root, name)
            elif parsed.interface == "host":
                self._define_host(root, name, iface)
            else:
                raise ComponentError(f"unknown Dolmen interface {name}")
            return
        with root.add_instance(name) as inst:
            if parsed.package.endswith(EXT_SUFFIX):
                self._define_ext(inst, target_interface(parsed), iface)
            else:
                for fname, fty in iface.functions.items():
                    inst.add_func(fname, _direct_call(f"{name}.{fname}", fty))

    # -------------------------------------------------------- dolmen host

    def _define_types(self, root: LinkerInstance, name: str) -> None:
        with root.add_instance(name) as inst:
            inst.add_resource("join-set", ResourceType.host(JOIN_SET_TYPE), lambda store, rep: None)

            def js_name(store: Any, handle: Any) -> str:
                return _ctx().join_set_name(handle.to_host(store).rep)

            inst.add_func("[method]join-set.name", js_name)

    def _define_host(self, root: LinkerInstance, name: str, iface: InterfaceInfo) -> None:
        fns = iface.functions
        with root.add_instance(name) as inst:

            def new_join_set(store: Any, closing: str) -> ResourceHost:
                rep = _ctx().new_join_set(None, closing)
                return ResourceHost.own(int(rep), JOIN_SET_TYPE)

            def new_join_set_named(store: Any, js_name: str, closing: str) -> Any:
                rep = _ctx().new_join_set(js_name, closing)
                return rep if isinstance(rep, str) else ResourceHost.own(rep, JOIN_SET_TYPE)

            def sleep(store: Any, duration_ms: int) -> None:
                _ctx().sleep(duration_ms)

            def submit_delay(store: Any, handle: Any, duration_ms: int) -> str:
                return _ctx().submit_delay(handle.to_host(store).rep, duration_ms)

            # A component imports only the host functions its code uses.
            join_next_type = fns["join-next"].result if "join-next" in fns else None

            def join_next(store: Any, handle: Any) -> Any:
                event = _ctx().join_next(handle.to_host(store).rep)
                if event is None:
                    answer: Any = {"err": "all-processed"}
                elif "delay_id" in event.data:
                    answer = {"ok": {"delay": event.data["delay_id"]}}
                else:
                    answer = {"ok": {"execution": event.data["child_id"]}}
                return to_wasm(answer, join_next_type, "join-next")  # type: ignore[arg-type]

            def log_line(store: Any, level: str, message: str) -> None:
                _ctx().emit({"warn": "warning", "trace": "debug"}.get(level, level), message)

            inst.add_func("new-join-set", new_join_set)
            inst.add_func("new-join-set-named", new_join_set_named)
            inst.add_func("sleep", sleep)
            inst.add_func("submit-delay", submit_delay)
            inst.add_func("join-next", join_next)
            inst.add_func("random-u64", lambda store: _ctx().random_u64())
            inst.add_func("now-ms", lambda store: _ctx().now())
            inst.add_func("current-id", lambda store: _ctx().execution_id)
            inst.add_func("log", log_line)
            inst.add_func("continue-as-new", self._continue_as_new)

    def _continue_as_new(self, store: Any, params_json: str) -> None:
        ctx = _ctx()
        ffqn = Ffqn.parse(ctx.ffqn)
        fn = self.loaded.info.functions().get(ffqn)
        if fn is None:  # pragma: no cover - the sandbox calls only exported functions
            raise ContinueAsNewError(f"component {self.loaded.digest} does not export {ffqn}")
        try:
            params = canonical_params(json.loads(params_json), fn)
        except json.JSONDecodeError as exc:
            raise ContinueAsNewError(
                f"continue-as-new got params that are not JSON ({exc}): pass the params of {ffqn} as a JSON "
                f"array by position or an object by name, e.g. {_example(fn)}",
                execution_id=ctx.execution_id,
            ) from None
        except InvalidValueError as exc:
            raise ContinueAsNewError(
                f"continue-as-new params do not fit {ffqn}: {exc}", execution_id=ctx.execution_id
            ) from None
        ctx.continue_as_new(params)

    # ------------------------------------------------------ extensions

    def _define_ext(self, inst: LinkerInstance, target: InterfaceName, iface: InterfaceInfo) -> None:
        for fname, fty in iface.functions.items():
            for suffix, factory in _EXTENSIONS.items():
                if fname.endswith(suffix):
                    ffqn = f"{target}.{fname.removesuffix(suffix)}"
                    inst.add_func(fname, factory(ffqn, fty))
                    break
            else:
                raise ComponentError(
                    f"{iface.name} has function '{fname}', which is not an extension function "
                    f"(-submit, -await-next, -get, -schedule); regenerate it with `platform wit ext`"
                )

    # ------------------------------------------------------------ WASI

    def _shadow_wasi(self, root: LinkerInstance, iface: InterfaceInfo) -> None:
        base, _, _ = iface.name.partition("@")
        shadow = _WASI_SHADOWS.get(base)
        if shadow is None:
            return
        with root.add_instance(iface.name) as inst:
            for fname in iface.functions:
                impl = shadow.get(fname)
                if impl is None:
                    impl = _refuse(f"{iface.name}#{fname}")
                inst.add_func(fname, impl)


# ------------------------------------------------------------ functions


def _example(fn: FunctionType) -> str:
    names = [name for name, _ in fn.params]
    return "[]" if not names else "{" + ", ".join(f'"{name}": ...' for name in names) + "}"


def _params_json(fty: FunctionType, args: tuple[Any, ...], skip: int = 0) -> list[Any]:
    return [from_wasm(value, ty) for value, (_, ty) in zip(args[skip:], fty.params[skip:])]


def _direct_call(ffqn: str, fty: FunctionType) -> Callable[..., Any]:
    def call(store: Any, *args: Any) -> Any:
        value = _ctx().call(ffqn, _params_json(fty, args))
        return None if fty.result is None else to_wasm(value, fty.result, "result")

    return call


def _ext_submit(ffqn: str, fty: FunctionType) -> Callable[..., Any]:
    _expect_borrow(ffqn, fty, "-submit")

    def submit(store: Any, handle: Any, *args: Any) -> str:
        rep = handle.to_host(store).rep
        return _ctx().submit(rep, ffqn, _params_json(fty, (handle, *args), skip=1))

    return submit


def _ext_await_next(ffqn: str, fty: FunctionType) -> Callable[..., Any]:
    _expect_borrow(ffqn, fty, "-await-next")
    result_type = fty.result

    def await_next(store: Any, handle: Any) -> Any:
        ctx = _ctx()
        event = ctx.join_next(handle.to_host(store).rep)
        if event is None:
            answer: Any = {"err": "all-processed"}
        elif "delay_id" in event.data:
            answer = {"err": {"function-mismatch": {"delay": event.data["delay_id"]}}}
        else:
            child_id = event.data["child_id"]
            if ctx.child_ffqn.get(child_id) != ffqn:
                answer = {"err": {"function-mismatch": {"execution": child_id}}}
            elif event.data.get("failure"):
                failure = event.data["failure"]
                answer = {"err": {"failed": {"execution-id": child_id, "kind": failure["kind"], "message": failure["message"]}}}
            else:
                ok = _ok_payload(result_type, child_id, event.data.get("result"))
                answer = {"ok": ok}
        return to_wasm(answer, result_type, "result")  # type: ignore[arg-type]

    return await_next


def _ok_payload(result_type: Any, child_id: str, value: Any) -> Any:
    # result<tuple<execution-id, T>, ...> or, for functions without a result, result<execution-id, ...>
    if isinstance(result_type, ResultT) and isinstance(result_type.ok, TupleT):
        return [child_id, value]
    return child_id


def _ext_get(ffqn: str, fty: FunctionType) -> Callable[..., Any]:
    result_type = fty.result

    def get(store: Any, child_id: str) -> Any:
        outcome = _ctx().get(child_id)
        if outcome.failure is not None:
            answer: Any = {"err": {"execution-id": child_id, "kind": outcome.failure.kind, "message": outcome.failure.message}}
        else:
            answer = {"ok": outcome.value}
        return to_wasm(answer, result_type, "result")  # type: ignore[arg-type]

    return get


def _ext_schedule(ffqn: str, fty: FunctionType) -> Callable[..., Any]:
    schedule_type = fty.params[0][1] if fty.params else None

    def schedule(store: Any, when: Any, *args: Any) -> str:
        spec = from_wasm(when, schedule_type)
        return _ctx().schedule(ffqn, _params_json(fty, (when, *args), skip=1), spec)

    return schedule


_EXTENSIONS: dict[str, Callable[[str, FunctionType], Callable[..., Any]]] = {
    "-submit": _ext_submit,
    "-await-next": _ext_await_next,
    "-get": _ext_get,
    "-schedule": _ext_schedule,
}


def _expect_borrow(ffqn: str, fty: FunctionType, suffix: str) -> None:
    if not fty.params or not isinstance(fty.params[0][1], ResourceT):
        raise UsageError(f"extension function {ffqn}{suffix} must take a borrow<join-set> first")


# ---------------------------------------------------------------- WASI


def _refuse(name: str) -> Callable[..., Any]:
    def refuse(store: Any, *args: Any) -> Any:
        raise ComponentError(
            f"workflows cannot call {name}: it is not deterministic; "
            "use dolmen:workflow/host (sleep, now-ms) or call an activity"
        )

    return refuse


def _wasi_datetime(seconds: int, nanoseconds: int) -> Record:
    value = Record()
    # setattr: a wasmtime Record takes any field, but its type declares none, so pyright refuses plain access.
    setattr(value, "seconds", seconds)  # noqa: B010
    setattr(value, "nanoseconds", nanoseconds)  # noqa: B010
    return value


def _datetime(store: Any) -> Record:
    ms = _ctx().now()
    return _wasi_datetime(ms // 1000, (ms % 1000) * 1_000_000)


def _resolution(store: Any) -> Record:
    return _wasi_datetime(0, 1_000_000)


_WASI_SHADOWS: dict[str, dict[str, Callable[..., Any]]] = {
    "wasi:random/random": {
        "get-random-bytes": lambda store, n: _ctx().random_bytes(n),
        "get-random-u64": lambda store: _ctx().random_u64(),
    },
    "wasi:random/insecure": {
        "get-insecure-random-bytes": lambda store, n: _ctx().random_bytes(n),
        "get-insecure-random-u64": lambda store: _ctx().random_u64(),
    },
    "wasi:random/insecure-seed": {
        "insecure-seed": lambda store: (_ctx().random_u64(), _ctx().random_u64()),
    },
    "wasi:clocks/wall-clock": {
        "now": _datetime,
        "resolution": _resolution,
    },
    "wasi:clocks/monotonic-clock": {
        "now": lambda store: _ctx().now() * 1_000_000,
        "resolution": lambda store: 1_000_000,
    },
}
