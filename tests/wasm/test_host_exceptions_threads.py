"""Host-function exceptions come back to the thread whose guest call raised them."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.records import Event
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.workflow.run_context import RunContext
from dolmen.platform.workflow.driver import Target
from dolmen.platform.workflow.replay import Replay
from dolmen.platform.workflow.sandbox import WorkflowSandbox
from tests.support.guests import load_guest, new_loader


class Marker(Exception):
    """An exception that says which thread raised it."""


class RaisingDriver:
    """A driver whose first new child raises `Marker(name)` once every thread got there."""

    def __init__(self, name: str, barrier: threading.Barrier) -> None:
        self.name = name
        self.barrier = barrier

    def resolve(self, ffqn: str) -> Target:
        self.barrier.wait(timeout=10)
        raise Marker(self.name)

    def eager_lock(self, target: Target) -> tuple[str, int] | None:
        return None

    def commit(self, ctx: RunContext, events: list[tuple[str, dict[str, Any], int]], creates: list[NewExecution]) -> list[Event]:
        raise AssertionError("never reached")

    def wait(self, ctx: RunContext, not_before: int | None = None) -> list[Event]:
        raise AssertionError("never reached")


@pytest.fixture(scope="module")
def wf_basic() -> LoadedComponent:
    return load_guest(new_loader("workflow"), "wf-basic", "workflows")


def test_concurrent_guest_calls_get_their_own_host_exceptions(wf_basic: LoadedComponent) -> None:
    """Two threads whose host functions raise at the same moment each see their own exception."""
    sandbox = WorkflowSandbox()
    mixups: list[str] = []

    def run(name: str, barrier: threading.Barrier) -> None:
        created = Event(0, "created", {"ffqn": "testing:wf/flows@1.0.0.serial", "params": [1]}, 1, "1-0")
        execution_id = f"E_01JD8X3K5QZ6V2N4M7P9R0S1T{name}"
        ctx = RunContext(execution_id, "testing:wf/flows@1.0.0.serial", Replay(execution_id, [created]), RaisingDriver(name, barrier))  # type: ignore[arg-type]
        try:
            sandbox.invoke(wf_basic, ctx, timeout_ms=10_000, memory_bytes=None)
        except Marker as exc:
            if str(exc) != name:
                mixups.append(f"{name} got {exc}")
        else:
            mixups.append(f"{name} got no exception")

    for _ in range(25):
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=run, args=(name, barrier)) for name in ("A", "B")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert mixups == []
