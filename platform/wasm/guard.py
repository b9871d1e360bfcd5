"""The guard: an activity's WASI waits and outgoing HTTP requests, bounded by its call's `Interruption`.

Why: wasmtime-py's WASI (the C API's `add_wasip2` and `add_wasi_http`) waits
in native code inside `wasi:io/poll.poll` and `pollable.block`, where no epoch
deadline reaches. A guest in `time.sleep(15)`, or waiting for an HTTP answer,
ran on past its time limit, and a cancellation could not stop it. Wasmtime's
own way out, dropping the future of an async call, needs an async store polled
by a Tokio reactor, which the C API does not drive.

How: the guest's linker shadows `poll` and `[method]pollable.block` of
`wasi:io/poll`, and `handle` of `wasi:http/outgoing-handler`, with Python
functions. These call a small component (`guard/component.wat`, built from
`guard/core.wat` and `guard/world.wit`; see `guard/README.md`) that is
instantiated in the same store through a linker with the native WASI only:

- `poll-for` waits for the guest's pollables plus a timer. A wait lasts at
  most one slice (`interruption.SLICE_NS`) or the time left, so the deadline
  ends it and a cancellation is seen within a slice;
- `handle` forwards a request with its connect, first-byte and between-bytes
  timeouts bounded by the time the call has left (plus `HTTP_TIMEOUT_MARGIN_NS`);
- `destination` reads a request's scheme and authority for an egress check.

Streams' own blocking methods (`blocking-read`, `blocking-write-and-flush`,
...) are not shadowed: on an HTTP body the between-bytes timeout bounds them,
and a guest returns to wasm code (where epochs reach) after each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from wasmtime import Engine, Store, StoreContext
from wasmtime.component import Component, Func, Instance, Linker, ResourceAny, Variant

from .interruption import Interruption, store_data

# A wait without an Interruption (a spare's start function) looks again this often.
_UNBOUNDED_SLICE_NS = 3_600 * 1_000_000_000
# How many distinct refusals of outgoing requests a call keeps for its failure message and stderr.
MAX_REFUSED = 5
# `handle`'s timeout meaning "no limit" (u64::MAX).
NO_LIMIT = 2**64 - 1
# A request's timeouts end this long after the attempt's deadline: the deadline,
# which the waits see first, decides the outcome (a timeout, retried per policy),
# not an HTTP error the guest might return as a final `err` a moment earlier.
HTTP_TIMEOUT_MARGIN_NS = 250_000_000
_GUARD_INTERFACE = "dolmen:guard/limits@0.1.0"
# What the guest's linker shadows: (interface without version, function).
_POLL = ("wasi:io/poll", "poll")
_BLOCK = ("wasi:io/poll", "[method]pollable.block")
_HANDLE = ("wasi:http/outgoing-handler", "handle")


def guards_imports(import_names: Sequence[str]) -> bool:
    """Whether a component with these imports can wait in WASI, and so needs the guard."""
    return any(name.startswith(("wasi:io/poll@", "wasi:http/outgoing-handler@")) for name in import_names)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an outgoing request goes: `scheme` ("http", "https" or another), `authority` ("host[:port]")."""

    scheme: str | None
    authority: str | None


# Decides on an outgoing request: None allows it, a message refuses it (the guest gets HTTP-request-denied).
EgressCheck = Callable[[Destination], "str | None"]


class StoreWatch:
    """An activity store's data: the call in force, and the guard instantiated next to the guest.

    `current` is the running call's `Interruption` (None between calls);
    `egress` checks outgoing requests (None allows all; see `egress`);
    `refused` collects the distinct messages of refused requests (at most
    `MAX_REFUSED`) for the call's failure message and stderr.
    """

    def __init__(self, guard: Guard | None = None) -> None:
        self.guard = guard
        self.current: Interruption | None = None
        self.waiting: str | None = None
        self.egress: EgressCheck | None = None
        self.refused: list[str] = []
        self._funcs: dict[str, Func] = {}

    def __bool__(self) -> bool:
        return True  # wasmtime-py keeps store data only when it is truthy

    def _func(self, store: StoreContext, name: str) -> Func:
        """The guard's function `name`; the guard is instantiated in this store at the first wait.

        Most calls never wait: instantiating it up front cost every fresh
        instance about 40 µs.
        """
        if not self._funcs:
            if self.guard is None:
                raise RuntimeError("a guarded WASI function was called in a store without a guard")
            self._attach(store, self.guard.linker.instantiate(store, self.guard.component))
        return self._funcs[name]

    def _attach(self, store: StoreContext, instance: Instance) -> None:
        interface = instance.get_export_index(store, _GUARD_INTERFACE)
        for name in ("poll-for", "destination", "handle"):
            index = instance.get_export_index(store, name, interface)
            func = instance.get_func(store, index) if index is not None else None
            if func is None:
                raise RuntimeError(f"the guard component exports no {name}")
            self._funcs[name] = func

    def wait(self, store: StoreContext, pollables: list[ResourceAny], what: str) -> list[int]:
        """Indices of the ready `pollables`; raises the interruption's error when the call must stop."""
        poll_for = self._func(store, "poll-for")
        timer = len(pollables)
        self.waiting = what
        try:
            while True:
                interruption = self.current
                if interruption is not None:
                    interruption.check(blocked_in=what)
                slice_ns = interruption.wait_slice_ns() if interruption is not None else _UNBOUNDED_SLICE_NS
                ready: list[int] = poll_for(store, pollables, slice_ns)
                hits = [i for i in ready if i != timer]
                if hits:
                    return hits
        finally:
            self.waiting = None

    def handle(self, store: StoreContext, request: ResourceAny, options: ResourceAny | None) -> Any:
        """wasi:http `handle` after the egress check, its timeouts bounded by the time left."""
        if self.egress is not None:
            refusal = self.egress(self._destination(store, request))
            if refusal is not None:
                if len(self.refused) < MAX_REFUSED and refusal not in self.refused:
                    self.refused.append(refusal)  # bounded: a guest may retry in a loop
                request.drop(store)
                if options is not None:
                    options.drop(store)
                # wasmtime-py lowers this result<future-incoming-response, error-code> untagged (its
                # cases hold different Python types): the err case is the error-code variant itself.
                return Variant("HTTP-request-denied")
        left = self.current.remaining_ns() if self.current is not None else None
        limit = NO_LIMIT if left is None else left + HTTP_TIMEOUT_MARGIN_NS
        return self._func(store, "handle")(store, request, options, limit)

    def _destination(self, store: StoreContext, request: ResourceAny) -> Destination:
        scheme, authority = self._func(store, "destination")(store, request)
        if isinstance(scheme, Variant):  # other(string)
            name = scheme.payload if scheme.tag == "other" else scheme.tag.lower()
        else:
            name = scheme.tag.lower() if scheme is not None else None
        return Destination(name, authority)


class Guard:
    """The guard component and its linker for one engine; shadows the waits of guest linkers.

    Raises `RuntimeError` if wasmtime's WASI cannot be found under the names
    the guard expects (a wasmtime upgrade that renamed it).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.component = Component(engine, _component_text())
        self.linker = Linker(engine)
        self.linker.add_wasip2()
        self.linker.add_wasi_http()
        self._version = native_wasi_version(engine)
        self._lock = threading.Lock()

    def shadow(self, linker: Linker) -> None:
        """Replace the blocking WASI functions of `linker` (which has the native WASI) with guarded ones."""
        linker.allow_shadowing = True
        with linker.root() as root:
            with root.add_instance(f"{_POLL[0]}@{self._version}") as poll:
                poll.add_func(_POLL[1], _poll)
                poll.add_func(_BLOCK[1], _block)
            with root.add_instance(f"{_HANDLE[0]}@{self._version}") as handler:
                handler.add_func(_HANDLE[1], _handle)
        linker.allow_shadowing = False


def _watch(store: StoreContext) -> StoreWatch:
    watch = store_data(store._context())  # noqa: SLF001 - the host callback's only handle on its store
    if not isinstance(watch, StoreWatch):
        raise RuntimeError("a guarded WASI function was called in a store without a StoreWatch")
    return watch


def _poll(store: StoreContext, pollables: list[ResourceAny]) -> list[int]:
    try:
        return _watch(store).wait(store, pollables, "wasi:io/poll.poll")
    finally:
        for pollable in pollables:
            pollable.drop(store)  # a host function ends the borrows it was lent


def _block(store: StoreContext, pollable: ResourceAny) -> None:
    try:
        _watch(store).wait(store, [pollable], "wasi:io/poll.pollable.block")
    finally:
        pollable.drop(store)


def _handle(store: StoreContext, request: ResourceAny, options: ResourceAny | None) -> Any:
    return _watch(store).handle(store, request, options)


@cache
def _component_text() -> str:
    return files(__name__.rpartition(".")[0]).joinpath("guard", "component.wat").read_text(encoding="utf-8")


_PROBE = """
(component
  (import "wasi:io/poll@0.2.0" (instance (export "pollable" (type (sub resource)))))
)
"""


def native_wasi_version(engine: Engine) -> str:
    """The WASI 0.2 version under which wasmtime's linker defines its interfaces, e.g. "0.2.12".

    A guest importing `wasi:io/poll@0.2.0` finds wasmtime's newest compatible
    definition, so shadowing works only under that exact name. Found by
    defining an empty instance at 0.2.N: while N is above wasmtime's
    version the empty one becomes the newest and a probe importing the
    `pollable` resource fails to link.
    """
    probe = Component(engine, _PROBE)
    for patch in range(64, -1, -1):
        linker = Linker(engine)
        linker.add_wasip2()
        linker.allow_shadowing = True
        with linker.root() as root:
            with root.add_instance(f"wasi:io/poll@0.2.{patch}"):
                pass
        store = Store(engine)
        try:
            linker.instantiate(store, probe)
        except Exception:  # noqa: BLE001, S112 - a failed link is the answer "above wasmtime's version"
            continue
        finally:
            store.close()
        return f"0.2.{patch}"
    raise RuntimeError("wasmtime's linker defines no wasi:io/poll@0.2.x; the guard cannot bound waits")
