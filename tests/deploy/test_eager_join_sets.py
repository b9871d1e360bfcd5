"""Join-set children that run at once on their workflow's runner, with real runner processes.

A workflow's commit creates as many of its join-set activity children as its
runner has free threads locked by that runner, and runs them there: they never
pass through their function's queue. The rest are queued. A child whose runner
dies is started again by its recovery timer, like a directly called one.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis

from dolmen.platform.client import Client
from tests.deploy.conftest import F, Cli, Gate, deployment, write
from tests.support.platform import Processes
from tests.support.polling import wait_for
from tests.support import indexes

DOUBLE = "testing:act/basic@1.0.0.double"
FETCH = "testing:act/basic@1.0.0.fetch"


def queued(client: Client, ffqn: str) -> int:
    """How many entries the function's queue ever received (deleted ones included)."""
    added = 0
    for stream in indexes.shards_of(client.redis).queues(ffqn):
        try:
            added += int(client.redis.xinfo_stream(stream)["entries-added"])
        except redis.ResponseError:  # no such stream: nothing was ever queued there
            pass
    return added


def test_children_up_to_the_free_threads_skip_the_queue(workdir: Path, cli: Cli, processes: Processes, client: Client) -> None:
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.runner("--concurrency", "8", "--name", "only")
    processes.scheduler()
    processes.wait_ready()
    small = client.submit(f"{F}.fan-out", [3]).execution_id
    assert client.wait(small, 120).outcome.value == 2 * (1 + 2 + 3)  # type: ignore[union-attr]
    children = client.executions.children(small)
    assert len(children) == 3 and all(client.get(c).status == "finished" for c in children)
    assert queued(client, DOUBLE) == 0, "three children fit in the runner's free threads"
    large = client.submit(f"{F}.fan-out", [40]).execution_id
    assert client.wait(large, 120).outcome.value == 40 * 41  # type: ignore[union-attr]
    assert 0 < queued(client, DOUBLE) < 40, "those past the free threads go through the queue"
    assert all(client.get(c).status == "finished" for c in client.executions.children(large))


def test_a_child_whose_runner_dies_is_started_again(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate
) -> None:
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    first = processes.runner("--concurrency", "4", "--name", "first")
    processes.scheduler()
    processes.wait_ready()
    workflow_id = client.submit(f"{F}.fetch-all", [[gate.url("hold-eager")]]).execution_id
    wait_for(lambda: gate.waiting == 1, timeout=60, what="the child's request at the gate")
    (child_id,) = client.executions.children(workflow_id)
    assert client.get(child_id).owner == "first" and queued(client, FETCH) == 0
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    processes.runner("--concurrency", "4", "--name", "second")
    gate.open()
    state = client.wait(workflow_id, 120)
    assert state.status == "finished" and state.outcome is not None
    assert [item["ok"] for item in state.outcome.value] == ["page hold-eager"]
    child_events = client.executions.events(child_id)
    assert [e.type for e in child_events] == ["created", "attempt_lost", "finished"], child_events
    assert child_events[1].data["owner"] == "first" and queued(client, FETCH) >= 1, "queued by its recovery timer"
