"""Golden histories: recorded logs replay cleanly; edited copies fail with the exact divergence.

The logs in golden/ were written by a real platform (see record_golden.py).
Replaying them against today's wf-basic component is the check that a change
to the engine or the component did not break running executions.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dolmen.platform.cli.main import cli
from dolmen.platform.store import keys
from dolmen.platform.store.connection import connect
from dolmen.platform.store.records import Event
from dolmen.platform.wasm.loader import LoadedComponent
from dolmen.platform.workflow.sandbox import WorkflowSandbox
from dolmen.platform.workflow.verify import Verdict, verify
from tests.support.guests import DATA_DIR, load_guest, new_loader

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def wf_basic() -> LoadedComponent:
    return load_guest(new_loader("workflow"), "wf-basic", "workflows")


def _record(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def _events(raw: list[dict[str, Any]]) -> list[Event]:
    out = []
    for i, item in enumerate(raw):
        data = {k: v for k, v in item.items() if k not in ("index", "type", "at")}
        out.append(Event(i, item["type"], data, item["at"], f"{1000 + i}-0"))
    return out


def _replay(loaded: LoadedComponent, record: dict[str, Any], events: list[dict[str, Any]] | None = None) -> Verdict:
    return verify(WorkflowSandbox(), loaded, record["execution_id"], record["ffqn"], _events(events or record["events"]))


@pytest.mark.parametrize("name", ["serial-3", "fan-out-4", "sleepy", "race", "nondet"])
def test_golden_history_replays_cleanly(wf_basic: LoadedComponent, name: str) -> None:
    """Every recorded log replays to the same requests and the same returned value."""
    record = _record(name)
    verdict = _replay(wf_basic, record)
    assert verdict.ok, verdict.message
    assert verdict.events == len(record["events"])


def test_python_randomness_time_and_dicts_replay_identically(wf_basic: LoadedComponent) -> None:
    """random, time.time() and dict order seen by the guest come back the same on replay."""
    record = _record("nondet")
    logged = json.loads(record["events"][-1]["result"])
    assert logged["order"] == ["b", "a", "c"] and logged["id"] == record["execution_id"]
    assert _replay(wf_basic, record).ok
    edited = copy.deepcopy(record)
    edited["events"][-1]["result"] = json.dumps({**logged, "random": 0.5})
    verdict = _replay(wf_basic, edited)
    assert not verdict.ok and "but the code returned" in verdict.message


def _children(events: list[dict[str, Any]]) -> list[int]:
    return [i for i, e in enumerate(events) if e["type"] == "child_submitted"]


def test_changed_param_is_reported_with_its_event(wf_basic: LoadedComponent) -> None:
    """A logged call with another parameter is a divergence at that event, naming both requests."""
    record = _record("serial-3")
    events = copy.deepcopy(record["events"])
    second = _children(events)[1]
    events[second]["params"] = [5]
    verdict = _replay(wf_basic, record, events)
    assert not verdict.ok and verdict.event_index == second
    assert verdict.message == (
        f"non-determinism at event {second}: the log holds "
        'child_submitted(ffqn="testing:act/basic@1.0.0.double", params=[5]) '
        'but the code asked for child_submitted(ffqn="testing:act/basic@1.0.0.double", params=[2])'
    )


def test_reordered_calls_are_reported(wf_basic: LoadedComponent) -> None:
    """Swapping two logged calls diverges at the first of them."""
    record = _record("fan-out-4")
    events = copy.deepcopy(record["events"])
    first, second = _children(events)[:2]
    events[first]["params"], events[second]["params"] = events[second]["params"], events[first]["params"]
    verdict = _replay(wf_basic, record, events)
    assert not verdict.ok and verdict.event_index == first
    assert "params=[2]" in (verdict.logged or "") and "params=[1]" in (verdict.requested or "")


def test_extra_call_in_the_code_is_reported(wf_basic: LoadedComponent) -> None:
    """Code that calls once more than the log holds diverges where the finished log ends."""
    record = _record("serial-3")
    events = copy.deepcopy(record["events"])
    last = _children(events)[-1]
    del events[last : last + 2]  # the last call and its response
    events[-1]["result"] = 6
    verdict = _replay(wf_basic, record, events)
    assert not verdict.ok and verdict.event_index == len(events) - 1
    assert verdict.requested == 'child_submitted(ffqn="testing:act/basic@1.0.0.double", params=[3])'


def test_missing_call_in_the_code_is_reported(wf_basic: LoadedComponent) -> None:
    """A logged call that the code never makes is a divergence naming the leftover request."""
    record = _record("serial-3")
    events = copy.deepcopy(record["events"])
    extra = copy.deepcopy(events[_children(events)[-1]])
    extra["params"] = [4]
    extra["child_id"] = f"{record['execution_id']}.4"
    events.insert(len(events) - 1, extra)
    verdict = _replay(wf_basic, record, events)
    assert not verdict.ok and verdict.event_index == len(events) - 2
    assert verdict.requested == "return"
    assert "but the code returned without asking for it" in verdict.message


def test_other_join_set_is_reported(wf_basic: LoadedComponent) -> None:
    """A request logged in another join set diverges even when function and params match."""
    record = _record("race")
    events = copy.deepcopy(record["events"])
    index = next(i for i, e in enumerate(events) if e["type"] == "child_submitted")
    events[index]["join_set"] = "elsewhere"
    verdict = _replay(wf_basic, record, events)
    assert not verdict.ok and verdict.event_index == index and 'join_set="elsewhere"' in (verdict.logged or "")


def test_platform_replay_command(redis_url: str, wf_basic: LoadedComponent) -> None:
    """`platform replay ID` prints ok for a clean log and the divergence (exit 1) for an edited one."""
    client = connect(redis_url)
    record = _record("serial-3")
    clean_id = record["execution_id"]
    edited = copy.deepcopy(record["events"])
    edited[_children(edited)[0]]["params"] = [9]
    edited_id = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
    for execution_id, events in ((clean_id, record["events"]), (edited_id, edited)):
        client.hset(keys.state(execution_id), mapping={
            "id": execution_id, "ffqn": record["ffqn"], "kind": "workflow", "digest": wf_basic.digest,
            "status": "finished", "created_at": events[0]["at"], "params": json.dumps(events[0]["params"]),
        })  # fmt: skip
        for event in events:
            data = {k: v for k, v in event.items() if k not in ("index", "type", "at")}
            client.xadd(keys.log(execution_id), {"t": event["type"], "d": json.dumps(data), "at": event["at"]})
    client.set(keys.blob(wf_basic.digest), (DATA_DIR / "components" / "sha256" / wf_basic.digest[7:]).read_bytes())
    runner = CliRunner()
    base = ["--redis", redis_url, "--data-dir", str(DATA_DIR)]
    ok = runner.invoke(cli, [*base, "replay", clean_id])
    assert ok.exit_code == 0 and ok.output.strip() == f"ok ({len(record['events'])} events)"
    bad = runner.invoke(cli, [*base, "--json", "replay", edited_id])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["ok"] is False and report["event_index"] == _children(edited)[0]
    assert "params=[9]" in report["logged"] and "params=[1]" in report["requested"]
    client.close()
