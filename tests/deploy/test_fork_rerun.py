"""`platform fork` and `platform rerun` with real runner and scheduler processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dolmen.platform.client import Client
from dolmen.platform.store.records import Event
from tests.deploy.conftest import F, Cli, Gate, deployment, write
from tests.support.platform import Processes

FETCH = f"{F}.fetch-all"


def comparable(event: Event, own_id: str) -> tuple[str, Any]:
    """An event with ids relative to its execution and without fork bookkeeping."""
    data = {k: v for k, v in event.data.items() if k not in ("component_digest", "forked_from")}
    for key in ("child_id", "delay_id"):
        if isinstance(data.get(key), str):
            data[key] = data[key].replace(own_id, "SELF")
    return event.type, data, event.at


def run(client: Client, urls: list[str]) -> str:
    execution_id = client.submit(FETCH, [urls]).execution_id
    assert client.wait(execution_id, 120).status == "finished"
    return execution_id


def test_fork_copies_the_prefix_then_follows_the_new_component(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """A fork at N has the source's first N events (ids renamed), restarts unanswered children, and runs the new code."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.runner("--concurrency", "4")
    processes.scheduler()
    gate.open()
    source = run(client, [gate.url("a"), gate.url("b")])
    events = client.executions.events(source)
    at = next(e.index for e in events if e.type == "response") + 1  # one child answered, one not
    forked = cli.json("fork", source, "--at", str(at), "--component", str(workdir / "build" / "wf2.wasm"))
    fork_id = forked["execution_id"]
    assert forked["events_copied"] == at and forked["verdict"]["ok"] and len(forked["children_restarted"]) == 1
    state = client.wait(fork_id, 120)
    assert state.status == "finished" and state.digest == forked["component_digest"] != client.get(source).digest
    fork_events = client.executions.events(fork_id)
    assert [comparable(e, fork_id) for e in fork_events[:at]] == [comparable(e, source) for e in events[:at]]
    assert fork_events[0].data["forked_from"] == {"execution_id": source, "at": at, "copied": forked["events_copied"]}
    assert state.outcome is not None and sorted(v["ok"] for v in state.outcome.value) == ["page a [v2]", "page b [v2]"]
    (restarted,) = forked["children_restarted"]
    child = client.get(restarted)
    assert child.parent == fork_id and child.status == "finished"
    answered = {e.data["child_id"] for e in events[:at] if e.type == "response"}
    assert all(client.executions.get(c.replace(source, fork_id)) is None for c in answered), "answered children are not run again"


def test_fork_refuses_a_prefix_that_diverges_on_the_component(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """Forking onto a component that would ask for other calls is refused before anything is written."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.runner("--concurrency", "4")
    processes.scheduler()
    gate.open()
    source = run(client, [gate.url("diverge-a"), gate.url("b")])
    before = client.executions.list(limit=100)[0]
    done = cli("fork", source, "--at", "4", "--component", str(workdir / "build" / "wf2.wasm"))
    assert done.returncode == 2 and "do not replay on component" in done.stderr and "event 2" in done.stderr
    assert len(client.executions.list(limit=100)[0]) == len(before)
    too_far = cli("fork", source, "--at", "99")
    assert too_far.returncode == 2 and "--at 99 is out of range" in too_far.stderr


def test_fork_draws_the_same_random_numbers_as_its_source(
    workdir: Path, cli: Cli, processes: Processes, client: Client
) -> None:
    """A workflow that drew random numbers before event 3 forks at 3: same seed, same draws, same child params.

    `seeded` passes `random-u64` into its first child (events 1-2) and all it
    drew (Python's `random` and a set's order too) into its second (event 3),
    which the fork submits anew.
    """
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.runner("--concurrency", "4")
    processes.scheduler()
    source = client.submit(f"{F}.seeded", []).execution_id
    original = client.wait(source, 120)
    assert original.status == "finished" and original.outcome is not None and original.outcome.failure is None
    events = client.executions.events(source)
    assert [e.type for e in events[:4]] == ["created", "child_submitted", "response", "child_submitted"]
    seed = events[0].data["seed"]
    assert isinstance(seed, str) and len(seed) == 32
    forked = cli.json("fork", source, "--at", "3")
    fork_id = forked["execution_id"]
    assert forked["verdict"]["ok"] and forked["children_restarted"] == []
    state = client.wait(fork_id, 120)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == original.outcome.value
    fork_events = client.executions.events(fork_id)
    assert fork_events[0].data["seed"] == seed
    assert fork_events[3].type == "child_submitted"
    assert fork_events[3].data["params"] == events[3].data["params"]
    assert client.get(f"{fork_id}.2").params == client.get(f"{source}.2").params == events[3].data["params"]


def test_rerun_starts_the_same_function_with_the_same_params(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """A rerun is a new root execution with the source's params, on the deployed version or a given component."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.runner("--concurrency", "4")
    processes.scheduler()
    gate.open()
    source = run(client, [gate.url("r")])
    rerun_id = cli("rerun", source).stdout.strip()
    assert rerun_id != source
    again = client.wait(rerun_id, 120)
    original = client.get(source)
    assert (again.ffqn, again.params, again.digest) == (original.ffqn, original.params, original.digest)
    assert again.outcome is not None and again.outcome.value == original.outcome.value  # type: ignore[union-attr]
    rerun_created = client.executions.events(rerun_id)[0].data
    assert rerun_created["rerun_of"] == source
    assert rerun_created["seed"] != client.executions.events(source)[0].data["seed"], "a rerun is a new run: a new seed"
    other = cli.json("rerun", source, "--component", str(workdir / "build" / "wf2.wasm"))
    moved = client.wait(other["execution_id"], 120)
    assert moved.digest == other["component_digest"] != original.digest
    assert moved.outcome is not None and moved.outcome.value == [{"ok": "page r [v2]"}]
