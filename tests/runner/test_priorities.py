"""Priority classes on real processes: a runner takes higher classes first, and children inherit their parent's class."""

from __future__ import annotations

from dolmen.platform.client import Client
from dolmen.platform.store import keys
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for

A = "testing:act/basic@1.0.0"


def _finished(client: Client, ids: list[str]) -> bool:
    return all((s := client.executions.get(i)) is not None and s.status == "finished" for i in ids)


def test_a_runner_takes_high_before_normal_before_low(redis_url: str, processes: Processes, client: Client) -> None:
    """Queued while no runner runs (low first, high last), one runner with one thread finishes them class by class."""
    deploy(redis_url, [activity()])
    low = [client.submit(f"{A}.nap", [50], priority="low").execution_id for _ in range(3)]
    normal = [client.submit(f"{A}.nap", [50]).execution_id for _ in range(3)]
    high = [client.submit(f"{A}.nap", [50], priority="high").execution_id for _ in range(3)]
    assert client.redis.smembers(keys.PRIORITIES) == {b"low", b"high"}
    assert client.executions.require(high[0]).priority == "high" and client.executions.require(normal[0]).priority == "normal"
    assert client.executions.events(low[0])[0].data["priority"] == "low"
    processes.runner("--concurrency", "1")
    processes.wait_ready(schedulers=0)
    everything = low + normal + high
    wait_for(lambda: _finished(client, everything), timeout=60, what="the nine executions to finish")
    ends = {i: client.executions.require(i).finished_at or 0 for i in everything}
    assert max(ends[i] for i in high) <= min(ends[i] for i in normal)
    assert max(ends[i] for i in normal) <= min(ends[i] for i in low)


def test_children_and_their_wake_ups_keep_the_parent_s_class(redis_url: str, processes: Processes, client: Client) -> None:
    """A high workflow's children are high too, and it finishes (its wake-ups went to its own class's queue)."""
    deploy(redis_url, [activity(), workflow()])
    processes.runner("--concurrency", "2")
    processes.scheduler()
    parent = client.submit("testing:wf/flows@1.0.0.fan-out", [3], priority="high").execution_id
    wait_for(lambda: _finished(client, [parent]), timeout=60, what="the high workflow to finish")
    state = client.executions.require(parent)
    assert state.outcome is not None and state.outcome.value == 2 + 4 + 6
    children = [e.data["child_id"] for e in client.executions.events(parent) if e.type == "child_submitted"]
    assert len(children) == 3
    assert {client.executions.require(c).priority for c in children} == {"high"}
