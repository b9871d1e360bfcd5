"""Short activities run in batches: one worker thread runs several attempts, then writes their finishes together."""

from __future__ import annotations

from dolmen.platform.client import Client
from dolmen.platform.store.heartbeats import read_processes
from dolmen.platform.runner.batching import MIN_SAMPLES, AttemptDurations, plan
from tests.support.platform import Processes, activity, deploy
from tests.support.polling import wait_for

A = "testing:act/basic@1.0.0"


def test_short_means_a_short_moving_average_over_enough_attempts() -> None:
    """Unknown and barely seen functions are not short; a slow attempt makes a short function long for a while."""
    durations = AttemptDurations(short_s=0.002)
    assert not durations.is_short("f")
    for _ in range(MIN_SAMPLES - 1):
        durations.observe("f", 0.0001)
    assert not durations.is_short("f")
    durations.observe("f", 0.0001)
    assert durations.is_short("f")
    durations.observe("f", 0.5)  # one slow attempt: the average jumps over the threshold
    assert not durations.is_short("f")
    for _ in range(40):
        durations.observe("f", 0.0001)
    assert durations.is_short("f") and not durations.is_short("g")


def test_plan_batches_only_what_outnumbers_the_threads_left_for_it() -> None:
    """Singles keep a thread each; short items share the rest evenly, at most max_batch to a batch."""
    short = lambda item: item.startswith("s")  # noqa: E731
    fits = plan(["s1", "s2", "w1"], short, threads=4)
    assert fits.singles == ["w1", "s1", "s2"] and fits.batches == []
    items = [f"s{i}" for i in range(10)] + ["w1", "w2"]
    spread = plan(items, short, threads=6)  # 4 threads left for 10 short items: batches of 3
    assert spread.singles == ["w1", "w2"] and [len(b) for b in spread.batches] == [3, 3, 3, 1]
    capped = plan([f"s{i}" for i in range(100)], short, threads=2, max_batch=16)
    assert all(len(b) <= 16 for b in capped.batches) and sum(map(len, capped.batches)) == 100
    assert plan([], short, threads=3) == plan([], short, threads=1)


def test_a_burst_of_short_activities_is_batched_and_each_finishes_once(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """After a few attempts make `double` short, 300 at once run in batches; each has one attempt and its own result."""
    deploy(redis_url, [activity(instances="reuse")])
    processes.runner("--concurrency", "2")
    processes.scheduler()
    for n in range(MIN_SAMPLES + 2):  # one at a time: each runs on its own and is timed
        assert client.wait(client.submit(f"{A}.double", [n]).execution_id, 60).outcome.value == 2 * n  # type: ignore[union-attr]
    ids = [client.submit(f"{A}.double", [n]).execution_id for n in range(300)]
    for n, execution_id in enumerate(ids):
        state = client.wait(execution_id, 120)
        assert state.status == "finished" and state.outcome is not None and state.outcome.value == 2 * n
    logs = client.executions.events_many(ids)
    for execution_id in ids:
        kinds = [event.type for event in logs[execution_id]]
        assert kinds.count("finished") == 1 and "attempt_failed" not in kinds and "attempt_lost" not in kinds, kinds

    def batched() -> int:
        return sum(int(p.details.get("batched", 0)) for p in read_processes(client.redis) if p.kind == "runner")

    wait_for(lambda: batched() > 0, timeout=30, what="the runner's heartbeat to count batched attempts")
