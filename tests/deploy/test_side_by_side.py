"""Two WIT versions of one function served side by side, and old digests kept alive for their executions."""

from __future__ import annotations

import json
from pathlib import Path

from dolmen.platform.client import Client
from tests.deploy.conftest import F, Cli, Gate, deployment, write
from tests.support.platform import Processes
from tests.support.polling import wait_for

V2 = "testing:wf/flows@2.0.0"
WITH_V2 = "  - {name: wf-two, kind: workflow, source: ./build/wfv2.wasm}\n"


def test_two_wit_versions_serve_side_by_side_through_platform_call(
    workdir: Path, cli: Cli, processes: Processes, client: Client
) -> None:
    """`...@1.0.0.serial` and `...@2.0.0.serial` come from different components and both answer `platform call`."""
    report = cli.json("deploy", str(write(workdir, "both.yaml", deployment("wf1", extra=WITH_V2))))
    digests = {c["name"]: c["digest"] for c in report["components"]}
    processes.runner("--concurrency", "4")
    processes.scheduler()
    one = cli("call", f"{F}.serial", "[3]")
    two = cli("call", f"{V2}.serial", '{"n": 3}')
    assert (one.returncode, one.stdout.strip()) == (0, "12"), one.stderr
    assert (two.returncode, json.loads(two.stdout)) == (0, "v2:12"), two.stderr
    states = client.executions.list(status="finished")[0]
    by_ffqn = {s.ffqn: s.digest for s in states if s.parent is None}
    assert by_ffqn == {f"{F}.serial": digests["wf"], f"{V2}.serial": digests["wf-two"]}
    functions = {f["ffqn"]: f["component"] for f in cli.json("functions")["functions"]}
    assert functions[f"{F}.serial"] == "wf" and functions[f"{V2}.serial"] == "wf-two"


def test_executions_finish_on_a_digest_that_left_the_deployment(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    """Executions of 1.0.0 keep running on their digest after a deployment drops 1.0.0 for 2.0.0."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.runner("--concurrency", "8")
    processes.scheduler()
    ids = [client.submit(f"{F}.fetch-all", [[gate.url(f"hold-{i}")]]).execution_id for i in range(3)]
    wait_for(lambda: gate.waiting == 3, timeout=60, what="3 held requests")
    digest = client.get(ids[0]).digest
    only_v2 = 'name: test\ncomponents:\n  - {name: act, kind: activity, source: ./build/act.wasm, allowed_hosts: ["127.0.0.1:*"]}\n' + WITH_V2
    report = cli.json("deploy", str(write(workdir, "v2.yaml", only_v2)))
    assert digest not in {c["digest"] for c in report["components"]} and report["upgrades"] == []
    versions = cli.json("versions", f"{F}.fetch-all")["versions"]
    assert [(v["digest"], v["unfinished"], v["revisions"], v["active"]) for v in versions] == [(digest, 3, [1], False)]
    gate.open()
    for i, execution_id in enumerate(ids):
        state = client.wait(execution_id, 120)
        assert state.status == "finished" and state.digest == digest
        assert state.outcome is not None and state.outcome.value == [{"ok": f"page hold-{i}"}]
    assert cli("call", f"{V2}.serial", "[2]").stdout.strip() == '"v2:6"'
