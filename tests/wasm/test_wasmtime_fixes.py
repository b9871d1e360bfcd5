"""The patch of wasmtime-py's untagged variant lowering, and the codec's agreement with wasmtime-py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from wasmtime.component import (
    ComponentInstanceType,
    FuncType,
    ListType,
    OptionType,
    RecordType,
    ResultType,
    TupleType,
    ValType,
    VariantType,
)
from wasmtime.component._types import VariantLikeType  # pyright: ignore[reportPrivateImportUsage]

from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.records import Event
from dolmen.platform.wasm import _wasmtime_fixes
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.wit.tagging import is_tagged
from dolmen.platform.wit.types import ListT, OptionT, RecordT, ResultT, TupleT, VariantT, WitType
from dolmen.platform.workflow.run_context import RunContext
from dolmen.platform.workflow.driver import Target
from dolmen.platform.workflow.replay import Replay
from dolmen.platform.workflow.sandbox import WorkflowSandbox
from tests.support.guests import GuestInstance, load_guest, new_loader


@pytest.fixture
def echo(echo_guest: LoadedComponent) -> Iterator[GuestInstance]:
    """A fresh instance of the echo component."""
    instance = GuestInstance(echo_guest)
    yield instance
    instance.close()


def test_patch_is_installed_by_the_host_modules() -> None:
    """Importing the loader, guest or activity host installs the patch; applying again is harmless."""
    assert _wasmtime_fixes.applied()
    _wasmtime_fixes.apply()
    assert _wasmtime_fixes.applied()


def test_unpatched_wasmtime_sends_a_bool_as_the_integer_case(
    echo: GuestInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the patch, err(true) of result<u32, bool> reaches the guest as ok(1): the bug being fixed."""
    monkeypatch.setattr(VariantLikeType, "_lower", _wasmtime_fixes.original_lower())
    assert echo.call("test:echo/choices.case-of-result-bool", [{"err": True}]) == "Ok(1)"
    assert echo.call("test:echo/choices.case-of-count-or-flag", [{"flag": True}]) == "CountOrFlag_Count(1)"


def test_unpatched_wasmtime_rejects_a_string_next_to_an_option_case(
    echo: GuestInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the patch, `text` of variant { maybe(option<u32>), text(string) } fails to lower."""
    monkeypatch.setattr(VariantLikeType, "_lower", _wasmtime_fixes.original_lower())
    with pytest.raises(ValueError, match="value not valid for this variant"):
        echo.call("test:echo/choices.case-of-maybe-or-text", [{"text": "hi"}])


def test_patched_wasmtime_sends_the_right_cases(echo: GuestInstance) -> None:
    """With the patch the guest receives err(true), flag(true) and text("hi") as sent."""
    assert echo.call("test:echo/choices.case-of-result-bool", [{"err": True}]) == "Err(True)"
    assert echo.call("test:echo/choices.case-of-count-or-flag", [{"flag": True}]) == "CountOrFlag_Flag(True)"
    assert echo.call("test:echo/choices.case-of-maybe-or-text", [{"text": "hi"}]) == "MaybeOrText_Text('hi')"


def _variant_likes(vt: ValType, wt: WitType) -> Iterator[tuple[VariantLikeType, WitType]]:
    """Every variant-like wasmtime type in `vt`, paired with the codec's type at the same place."""
    if isinstance(vt, VariantLikeType):
        yield vt, wt
    if isinstance(vt, ListType) and isinstance(wt, ListT):
        yield from _variant_likes(vt.element, wt.element)
    elif isinstance(vt, OptionType) and isinstance(wt, OptionT):
        yield from _variant_likes(vt.payload, wt.inner)
    elif isinstance(vt, TupleType) and isinstance(wt, TupleT):
        for v, w in zip(vt.elements, wt.elements):
            yield from _variant_likes(v, w)
    elif isinstance(vt, RecordType) and isinstance(wt, RecordT):
        for (_, v), (_, w) in zip(vt.fields, wt.fields):
            yield from _variant_likes(v, w)
    elif isinstance(vt, VariantType) and isinstance(wt, VariantT):
        for (_, v), (_, w) in zip(vt.cases, wt.cases):
            if v is not None and w is not None:
                yield from _variant_likes(v, w)
    elif isinstance(vt, ResultType) and isinstance(wt, ResultT):
        for v, w in ((vt.ok, wt.ok), (vt.err, wt.err)):
            if v is not None and w is not None:
                yield from _variant_likes(v, w)


def test_codec_tagging_rule_agrees_with_wasmtime_py(echo_guest: LoadedComponent) -> None:
    """For every variant, option and result type in the echo component, the codec's tagged/untagged choice is wasmtime-py's."""
    engine, component = echo_guest.engine, echo_guest.component
    checked = 0
    for name, ext in component.type.exports(engine).items():
        if not isinstance(ext.ty, ComponentInstanceType) or not name.startswith("test:echo/"):
            continue
        iface = next(i for i in echo_guest.info.exports if i.name == name)
        for fname, item in ext.ty.exports(engine).items():
            if not isinstance(item.ty, FuncType):
                continue
            fn = iface.functions[fname]
            pairs = list(zip((t for _, t in item.ty.params), (t for _, t in fn.params)))
            if item.ty.result is not None and fn.result is not None:
                pairs.append((item.ty.result, fn.result))
            for vt, wt in pairs:
                for wasmtime_type, codec_type in _variant_likes(vt, wt):
                    assert is_tagged(codec_type) is wasmtime_type._tagged(), codec_type.wit()  # pyright: ignore[reportPrivateUsage]
                    checked += 1
    assert checked > 50


# ------------------------------------------------- type structure, read once


def _echo_types(echo_guest: LoadedComponent) -> list[ValType]:
    """Every parameter and result type of the echo component's exports, as fresh type objects."""
    engine, component = echo_guest.engine, echo_guest.component
    out: list[ValType] = []
    for name, ext in component.type.exports(engine).items():
        if isinstance(ext.ty, ComponentInstanceType) and name.startswith("test:echo/"):
            for item in ext.ty.exports(engine).values():
                if isinstance(item.ty, FuncType):
                    out += [t for _, t in item.ty.params] + ([item.ty.result] if item.ty.result is not None else [])
    return out


def _members(vt: ValType) -> list[ValType]:
    if isinstance(vt, ListType):
        return [vt.element]
    if isinstance(vt, TupleType):
        return vt.elements
    if isinstance(vt, RecordType):
        return [t for _, t in vt.fields]
    if isinstance(vt, VariantLikeType):
        return [t for _, t in vt._cases() if t is not None]  # pyright: ignore[reportPrivateUsage]
    return []


def test_a_type_reads_its_members_once(echo_guest: LoadedComponent) -> None:
    """Asked again, a composite type answers with the same member objects; lists are handed out as copies."""
    seen = 0
    pending = _echo_types(echo_guest)
    while pending:
        vt = pending.pop()
        members = _members(vt)
        again = _members(vt)
        assert len(members) == len(again) and all(a is b for a, b in zip(members, again))
        if isinstance(vt, TupleType):
            first = vt.elements
            first.clear()
            assert len(vt.elements) == len(again)
        if isinstance(vt, VariantLikeType):
            assert vt._cases() is vt._cases()  # pyright: ignore[reportPrivateUsage]
            assert vt._tagged() is vt._tagged()  # pyright: ignore[reportPrivateUsage]
        seen += 1
        pending += members
    assert seen > 100


def test_threads_reading_a_fresh_type_at_once_all_get_the_first_answer(echo_guest: LoadedComponent) -> None:
    """Concurrent first reads of a type's members, cases and lowering plan end with one stored answer for all."""
    variants = [vt for vt in _echo_types(echo_guest) if isinstance(vt, VariantLikeType)]
    assert variants
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    answers: list[list[tuple[int, ...]]] = [[] for _ in range(threads_n)]

    def read(slot: int) -> None:
        barrier.wait(timeout=10)
        for vt in variants:
            cases = vt._cases()  # pyright: ignore[reportPrivateUsage]
            plan = _wasmtime_fixes._remembered(vt, "_dolmen_lower", _wasmtime_fixes._lower_plan)  # pyright: ignore[reportPrivateUsage]
            answers[slot].append((id(cases), id(plan), *(id(t) for _, t in cases)))

    threads = [threading.Thread(target=read, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(a == answers[0] for a in answers) and len(answers[0]) == len(variants)


class _Children:
    """A driver that answers every child at once: `fetch` of an url starting with ok/err/fail returns ok, err or fails."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, Any]] = []

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        self.submitted += [(d["child_id"], d["params"][0]) for t, d, _ in events if t == "child_submitted"]
        first = ctx.replay.length
        return [Event(first + i, t, d, at, f"{first + i + 1}-0") for i, (t, d, at) in enumerate(events)]

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        out: list[Event] = []
        for child_id, param in self.submitted:
            data: dict[str, Any] = {"child_id": child_id, "join_set": "g1"}
            if not isinstance(param, str):
                data["result"] = 2 * param
            elif param.startswith("fail"):
                data["failure"] = {"kind": "trap", "message": f"{param} failed"}
            else:
                data["result"] = {param[:3] if param[:3] in ("ok", "err") else "ok": param.upper()}
            out.append(Event(ctx.replay.length + len(out), "response", data, 2_000, f"{ctx.replay.length + len(out) + 1}-0"))
        self.submitted = []
        return out

    def resolve(self, ffqn: str) -> Target:
        return Target(ffqn, "activity", "sha256:act", 1, "act")

    def eager_lock(self, target: Target) -> tuple[str, int] | None:
        return None


@pytest.fixture(scope="module")
def wf_basic() -> LoadedComponent:
    return load_guest(new_loader("workflow"), "wf-basic", "workflows")


def test_workflows_in_many_threads_get_their_answers_lowered_right(wf_basic: LoadedComponent) -> None:
    """Join-set answers (ok tuples, err results, failed children) are lowered right by threads sharing fresh host types."""
    urls = ["ok-a", "err-b", "fail-c", "ok-d", "err-e", "fail-f"]

    def expected(execution_id: str) -> list[dict[str, str]]:
        failed = "AwaitNextError_Failed(value=ExecutionError(execution_id='{}.{}', kind='trap', message='{} failed'))"
        return [
            {"err": failed.format(execution_id, n, url)} if url.startswith("fail") else {url[:3].rstrip("-"): url.upper()}
            for n, url in enumerate(urls, 1)
        ]

    for _ in range(3):
        sandbox = WorkflowSandbox()  # new host functions: their types are read for the first time, concurrently
        threads_n = 6
        barrier = threading.Barrier(threads_n)
        problems: list[str] = []

        def run(slot: int, sandbox: WorkflowSandbox, barrier: threading.Barrier, problems: list[str]) -> None:
            flow = "fetch-all" if slot % 2 else "fan-out"
            ffqn = f"testing:wf/flows@1.0.0.{flow}"
            params: list[Any] = [urls] if flow == "fetch-all" else [20]
            execution_id = f"E_01JD8X3K5QZ6V2N4M7P9R0S1T{slot}"
            created = Event(0, "created", {"ffqn": ffqn, "params": params}, 1_000, "1-0")
            ctx = RunContext(execution_id, ffqn, Replay(execution_id, [created]), _Children())
            barrier.wait(timeout=10)
            try:
                value = sandbox.invoke(wf_basic, ctx, timeout_ms=30_000, memory_bytes=None)
            except Exception as exc:  # noqa: BLE001 - reported below with the thread's flow
                problems.append(f"{flow}: {exc!r}")
                return
            if flow == "fan-out" and value != sum(2 * i for i in range(1, 21)):
                problems.append(f"fan-out returned {value}")
            if flow == "fetch-all" and value != expected(execution_id):
                problems.append(f"fetch-all returned {value}")

        threads = [threading.Thread(target=run, args=(i, sandbox, barrier, problems)) for i in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert problems == []
