"""`instances: reuse` on a workflow, with real runner processes.

A reused instance skips the guest runtime's first-call seeding, so the runner
draws that entropy itself (`RunContext.redraw`): the host's randomness
(`random-u64`, WASI random) stays the same on a replay on a fresh instance.
Python's `random` module state lives in the guest and carries over, which the
README says; `seeded` shows both, as it draws from the host for its first child
and from Python's `random` for its second.
"""

from __future__ import annotations

from pathlib import Path

from dolmen.platform.client import Client
from tests.deploy.conftest import F, Cli, deployment, write
from tests.support.platform import Processes

REUSE = "blocking: in-memory\n    instances: reuse\n    max_instance_uses: 3"


def test_reused_instances_draw_the_host_entropy_a_fresh_one_would(
    workdir: Path, cli: Cli, processes: Processes, client: Client
) -> None:
    """Runs 1 and 4 get fresh instances (3 uses each); all replay their host draws; only Python's `random` carries over."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1", wf_settings=REUSE))))
    processes.runner("--concurrency", "1")  # one thread: each run takes the instance the last one gave back
    processes.scheduler()
    processes.wait_ready()
    ids = []
    for _ in range(5):
        execution_id = client.submit(f"{F}.seeded", []).execution_id
        state = client.wait(execution_id, 120)
        assert state.status == "finished" and state.outcome is not None and state.outcome.failure is None
        ids.append(execution_id)
    verdicts = [cli("replay", execution_id) for execution_id in ids]
    fresh = [v.returncode == 0 for v in verdicts]
    assert fresh == [True, False, False, True, False], [v.stdout for v in verdicts]
    for verdict in (v for v, ok in zip(verdicts, fresh) if not ok):
        # The host's draw (events 1-2) replays; the second child's params hold Python's `random`.
        assert "non-determinism at event 3" in verdict.stdout and 'random' in verdict.stdout.split('but the code asked for')[1]


def test_stateless_workflows_on_reused_instances_replay_cleanly(
    workdir: Path, cli: Cli, processes: Processes, client: Client
) -> None:
    """Workflows whose code keeps no state give the same logs on reused instances: every replay is clean."""
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1", wf_settings=REUSE))))
    processes.runner("--concurrency", "2")
    processes.scheduler()
    processes.wait_ready()
    ids = [client.submit(f"{F}.serial", [n]).execution_id for n in range(1, 9)]
    for execution_id in ids:
        state = client.wait(execution_id, 120)
        assert state.status == "finished" and state.outcome is not None and state.outcome.failure is None
        done = cli("replay", execution_id)
        assert done.returncode == 0 and done.stdout.startswith("ok"), done.stdout + done.stderr
