"""Replay-verified upgrades of running workflows, with real runner and scheduler processes.

wf-basic (v1) and wf-next (v2) export the same `testing:wf/flows@1.0.0`;
v2's `fetch-all` makes the same calls and marks results " [v2]", unless its
first URL contains "diverge", in which case it fetches in reverse order.
Executions wait on the gated HTTP server while deployments happen.
"""

from __future__ import annotations

from pathlib import Path

from dolmen.platform.client import Client
from dolmen.platform.store.records import ExecutionState
from tests.deploy.conftest import F, Cli, Gate, active_revision, deployment, write
from tests.support.platform import Processes
from tests.support.polling import wait_for

FETCH = f"{F}.fetch-all"


def start(processes: Processes, concurrency: int = 32) -> None:
    processes.runner("--concurrency", str(concurrency))
    processes.scheduler()
    processes.wait_ready()


def submit_waiting(client: Client, gate: Gate, urls_of: list[list[str]]) -> list[str]:
    """Start fetch-all executions and wait until each has submitted its children and waits on the gate."""
    ids = [client.submit(FETCH, [[gate.url(u) for u in urls]]).execution_id for urls in urls_of]
    held = sum(1 for urls in urls_of for u in urls if "hold" in u)
    wait_for(lambda: gate.waiting == held, timeout=120, what=f"{held} held requests (now {gate.waiting})")
    served = {i: sum(1 for u in urls if "hold" not in u) for i, urls in zip(ids, urls_of)}
    # A fast child's response may land after the workflow first unloads; wait until each workflow
    # has consumed every response it can get and waits again, so that its log no longer grows.
    wait_for(lambda: all(settled(client, i, n) for i, n in served.items()), timeout=60, what="every workflow to unload")
    return ids


def settled(client: Client, execution_id: str, responses: int) -> bool:
    types = [e.type for e in client.executions.events(execution_id)]
    return client.get(execution_id).status == "blocked" and types.count("response") == responses and types[-1] == "join_next"


def finish_all(client: Client, ids: list[str]) -> list[ExecutionState]:
    for execution_id in ids:
        wait_for(lambda e=execution_id: client.get(e).status == "finished", timeout=120, what=f"{execution_id} to finish")  # type: ignore[misc]
    return [client.get(i) for i in ids]


def values(state: ExecutionState) -> list[str]:
    assert state.outcome is not None and state.outcome.failure is None, state.outcome
    return [item["ok"] for item in state.outcome.value]


def fetch_report(report: dict) -> dict:  # type: ignore[type-arg]
    (found,) = [u for u in report["upgrades"] if u["ffqn"] == FETCH]
    return found


def test_compatible_version_moves_all_20_running_executions(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """A v2 with the same calls re-pins all 20 waiting executions (an `upgraded` event each) and they finish on v2."""
    v1 = cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    start(processes)
    ids = submit_waiting(client, gate, [[f"hold-c{i}"] for i in range(20)])
    v1_digest = client.get(ids[0]).digest
    report = cli.json("deploy", str(write(workdir, "v2.yaml", deployment("wf2"))))
    assert (report["previous"], report["revision"]) == (v1["revision"], v1["revision"] + 1)
    upgrade = fetch_report(report)
    v2_digest = upgrade["to_digest"]
    assert upgrade["from_digest"] == v1_digest != v2_digest
    assert sorted(e["execution_id"] for e in upgrade["executions"]) == sorted(ids)
    assert {e["outcome"] for e in upgrade["executions"]} == {"upgraded"}
    for execution_id in ids:
        state = client.get(execution_id)
        assert (state.digest, state.revision, state.component) == (v2_digest, report["revision"], "wf")
        (event,) = [e for e in client.executions.events(execution_id) if e.type == "upgraded"]
        assert event.data["from"] == v1_digest and event.data["to"] == v2_digest
        assert event.data["events_verified"] == event.index  # every event before it was replayed
    gate.open()
    for i, state in enumerate(finish_all(client, ids)):
        assert values(state) == [f"page hold-c{i} [v2]"], "a moved execution finishes on the new code"


def test_divergent_version_leaves_all_20_on_the_old_digest(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """A v2 with other calls rejects all 20 (naming the first diverging event); they finish on v1, new ones run v2."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    start(processes)
    ids = submit_waiting(client, gate, [[f"diverge-hold-{i}", f"quick-{i}"] for i in range(20)])
    v1_digest = client.get(ids[0]).digest
    report = cli.json("deploy", str(write(workdir, "v2.yaml", deployment("wf2"))))
    upgrade = fetch_report(report)
    assert {e["outcome"] for e in upgrade["executions"]} == {"rejected"} and len(upgrade["executions"]) == 20
    for execution_id in ids:
        assert client.get(execution_id).digest == v1_digest
        (event,) = [e for e in client.executions.events(execution_id) if e.type == "upgrade_rejected"]
        assert event.data["to"] == upgrade["to_digest"] and event.data["event_index"] == 2
        assert "diverge-hold" in event.data["logged"] and "quick" in event.data["requested"]
    versions = cli.json("versions", FETCH)["versions"]
    old = [v for v in versions if v["digest"] == v1_digest]
    assert old and old[0]["unfinished"] == 20 and old[0]["revisions"] == [1] and not old[0]["active"]
    gate.open()
    for i, state in enumerate(finish_all(client, ids)):
        assert state.digest == v1_digest
        assert values(state) == [f"page quick-{i}", f"page diverge-hold-{i}"], "rejected executions finish on v1 (results in log order)"
    new = client.submit(FETCH, [[gate.url("fresh")]]).execution_id
    state = client.wait(new, 120)
    assert state.digest == upgrade["to_digest"] and values(state) == ["page fresh [v2]"]


def test_busy_executions_are_upgraded_by_the_scheduler(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """Executions a runner holds in memory at deploy time are queued, and the scheduler moves them once released."""
    # Long enough for the deploy below to find them still waiting on a loaded machine (it releases them, not the test).
    in_memory = "blocking: in-memory\n    blocking_timeout: 12s"
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1", wf_settings=in_memory))))
    start(processes, concurrency=8)
    ids = [client.submit(FETCH, [[gate.url(f"hold-b{i}")]]).execution_id for i in range(3)]
    wait_for(lambda: gate.waiting == 3, timeout=60, what="3 held requests")
    wait_for(lambda: all(client.get(i).status == "running" for i in ids), timeout=30, what="workflows waiting in memory")
    report = cli.json("deploy", "--upgrade-wait", "0", str(write(workdir, "v2.yaml", deployment("wf2", wf_settings=in_memory))))
    upgrade = fetch_report(report)
    assert upgrade["queued"] and {e["outcome"] for e in upgrade["executions"]} == {"queued"}
    to = upgrade["to_digest"]
    wait_for(lambda: all(client.get(i).digest == to for i in ids), timeout=60, what="the scheduler to move the queued executions")
    gate.open()
    for i, state in enumerate(finish_all(client, ids)):
        assert values(state) == [f"page hold-b{i} [v2]"]
        assert [e.type for e in client.executions.events(state.id)].count("upgraded") == 1


def test_dry_run_reports_every_execution_and_writes_nothing(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """`deploy --dry-run` says which executions would move or stay (with the diverging event) and stores nothing."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    start(processes, concurrency=8)
    *movers, stayer = submit_waiting(client, gate, [["hold-m0"], ["hold-m1"], ["diverge-hold-s0", "q0"]])
    stayers = [stayer]
    lengths = {i: len(client.executions.events(i)) for i in movers + stayers}
    report = cli.json("deploy", "--dry-run", str(write(workdir, "v2.yaml", deployment("wf2"))))
    assert report["dry_run"] and report["revision"] is None
    outcomes = {e["execution_id"]: e for e in fetch_report(report)["executions"]}
    assert {outcomes[i]["outcome"] for i in movers} == {"would-upgrade"}
    (stay,) = [outcomes[i] for i in stayers]
    assert stay["outcome"] == "would-reject" and stay["verdict"]["event_index"] == 2
    assert "event 2: the log holds child_submitted" in stay["detail"]
    assert active_revision(cli.redis_url) == (1, [1])
    assert {i: len(client.executions.events(i)) for i in movers + stayers} == lengths
    human = cli("deploy", "--dry-run", str(workdir / "v2.yaml"))
    assert human.returncode == 0 and "would move" in human.stdout and "would stay (diverges)" in human.stdout
    assert "nothing was stored" in human.stdout


def test_pinned_never_moves_and_upgrade_moves_on_demand(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """With `upgrade: pinned` nothing moves; `platform upgrade FFQN --to DIGEST` then moves what replays cleanly."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    start(processes, concurrency=8)
    ids = submit_waiting(client, gate, [["hold-p0"], ["diverge-hold-p1", "q1"]])
    v1_digest = client.get(ids[0]).digest
    pinned = deployment("wf2", wf_settings="blocking: unload\n    upgrade: pinned")
    report = cli.json("deploy", str(write(workdir, "v2.yaml", pinned)))
    upgrade = fetch_report(report)
    assert {e["outcome"] for e in upgrade["executions"]} == {"kept"}
    assert all(client.get(i).digest == v1_digest for i in ids)
    prefix = upgrade["to_digest"][:20]
    dry = cli.json("upgrade", FETCH, "--to", prefix, "--dry-run")
    assert sorted(e["outcome"] for e in dry["executions"]) == ["would-reject", "would-upgrade"]
    assert all(client.get(i).digest == v1_digest for i in ids)
    done = cli.json("upgrade", FETCH, "--to", prefix)
    by_id = {e["execution_id"]: e["outcome"] for e in done["executions"]}
    assert by_id == {ids[0]: "upgraded", ids[1]: "rejected"}
    gate.open()
    first, second = finish_all(client, ids)
    assert values(first) == ["page hold-p0 [v2]"] and values(second) == ["page q1", "page diverge-hold-p1"]


def test_force_moves_without_checking(workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate) -> None:
    """With `upgrade: force` a divergent execution moves anyway and then fails with a non-determinism error."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    start(processes, concurrency=8)
    (execution_id,) = submit_waiting(client, gate, [["diverge-hold-f", "q"]])
    forced = deployment("wf2", wf_settings="blocking: unload\n    upgrade: force")
    upgrade = fetch_report(cli.json("deploy", str(write(workdir, "v2.yaml", forced))))
    assert [e["outcome"] for e in upgrade["executions"]] == ["upgraded"]
    (event,) = [e for e in client.executions.events(execution_id) if e.type == "upgraded"]
    assert event.data["forced"] is True and event.data["events_verified"] == 0
    gate.open()
    (state,) = finish_all(client, [execution_id])
    assert state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "non_determinism" and "event 2" in state.outcome.failure.message
