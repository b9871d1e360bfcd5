"""Workflows survive SIGKILL of their runner at random points, and restarts of every process."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.servers import ValkeyForTests
from tests.workflow.test_workflows import shape


F = "testing:wf/flows@1.0.0"

pytestmark = pytest.mark.slow


def _check_children(client: Client, execution_id: str, expected: int) -> None:
    children = client.executions.children(execution_id)
    assert len(children) == expected and len(set(children)) == expected
    for child in children:
        assert [e.type for e in client.executions.events(child)].count("finished") == 1


@pytest.mark.parametrize(("function", "expected"), [("serial", 90300), ("fan-out", 90300)])
def test_sigkill_at_random_points(redis_url: str, processes: Processes, client: Client, function: str, expected: int) -> None:
    """A 300-child workflow whose runner is SIGKILLed four times finishes once, with the same log shape."""
    deploy(redis_url, [activity(), workflow(blocking="in-memory")])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "800"
    processes.scheduler()
    runner = processes.runner("--concurrency", "4")
    processes.wait_ready(runners=1)
    reference = client.submit(f"{F}.{function}", [300]).execution_id
    assert client.wait(reference, 180).outcome.value == expected  # type: ignore[union-attr]

    rng = random.Random(function)
    victim_id = client.submit(f"{F}.{function}", [300]).execution_id
    kills = 0
    while kills < 4 and client.get(victim_id).status != "finished":
        time.sleep(rng.uniform(0.1, 0.6))
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        kills += 1
        runner = processes.runner("--concurrency", "4")
    state = client.wait(victim_id, 240)
    assert state.status == "finished" and state.outcome.value == expected  # type: ignore[union-attr]
    assert kills >= 2, "the workflow finished before the runner could be killed twice"
    events = client.executions.events(victim_id)
    assert [e.type for e in events].count("finished") == 1
    expected_shape = shape(client.executions.events(reference))
    # Each kill that caught the workflow locked shows as one `attempt_lost`; the rest is identical.
    lost = [e for e in events if e.type == "attempt_lost"]
    assert len(lost) <= kills
    assert [e.data["attempt"] for e in lost] == sorted(e.data["attempt"] for e in lost)
    events = [e for e in events if e.type != "attempt_lost"]
    if function == "serial":
        assert shape(events) == expected_shape
    else:
        # In a fan-out, responses interleave with requests differently from run to run; requests do not.
        assert [s for s in shape(events) if s[0] != "response"] == [s for s in expected_shape if s[0] != "response"]
    _check_children(client, victim_id, 300)


def test_durable_sleep_survives_a_restart_of_everything(own_valkey: ValkeyForTests, tmp_path: Path) -> None:
    """A workflow asleep while runner, scheduler and Valkey all restart wakes up and finishes."""
    url = own_valkey.url
    deploy(url, [activity(), workflow(blocking="unload")])
    client = Client.connect(url)
    first = Processes(url, tmp_path / "first")
    second = Processes(url, tmp_path / "second")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    try:
        first.runner()
        first.scheduler()
        first.wait_ready()
        execution_id = client.submit(f"{F}.sleepy", [3000]).execution_id
        deadline = time.monotonic() + 30
        while client.get(execution_id).status != "blocked":
            assert time.monotonic() < deadline, "the workflow never went to sleep"
            time.sleep(0.05)
        for proc in first.procs:
            os.kill(proc.pid, signal.SIGKILL)
        own_valkey.stop()
        own_valkey.start()
        second.runner()
        second.scheduler()
        state = client.wait(execution_id, 60)
        assert state.status == "finished"
        assert state.outcome.value >= 3000  # type: ignore[union-attr,operator]
        assert [e.type for e in client.executions.events(execution_id)] == [
            "created", "delay_requested", "response", "finished",
        ]  # fmt: skip
    finally:
        first.stop()
        second.stop()
        client.close()
