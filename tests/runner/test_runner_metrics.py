"""Runners and schedulers publish their own metrics with their heartbeats; every gateway serves them (platform/metrics.py)."""

from __future__ import annotations

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from dolmen.platform.store.heartbeats import read_metrics
from dolmen.platform.metrics import merge_snapshots
from dolmen.platform.store.connection import connect
from dolmen.platform.store.leases import Lease, Leases
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for

ACT = "testing:act/basic@1.0.0"
WF = "testing:wf/flows@1.0.0"


def samples(redis_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every published sample by (name, labels without `process`), summed over processes."""
    client = connect(redis_url)
    try:
        families = merge_snapshots(read_metrics(client))
    finally:
        client.close()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in families:
        for sample in family.samples:
            assert sample.labels["process"].split(":")[0] in ("runner", "scheduler")
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "process"))
            out[(sample.name, labels)] = out.get((sample.name, labels), 0.0) + sample.value
    return out


def test_attempts_takeovers_replays_and_timers_are_published(redis_url: str, processes: Processes, client: Client) -> None:
    """A lock taken over from a dead holder, activity and workflow attempts, a replay after an unload, and its timer."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=2, initial_backoff_ms=10)), workflow(blocking="unload")])
    # A runner that died holding this execution's lock: the next one takes it over once its lease ends.
    orphan = client.submit(f"{ACT}.double", [21]).execution_id
    redis = connect(redis_url)
    try:
        assert isinstance(Leases(redis).lock(orphan, "a-runner-that-died", 300), Lease)
    finally:
        redis.close()
    processes.scheduler()
    processes.runner()
    processes.wait_ready(runners=1)
    assert client.wait(orphan, 60).outcome.value == 42  # type: ignore[union-attr]
    # The sleep unloads the workflow (blocking: unload); its timer wakes it and it replays its log.
    sleeper = client.submit(f"{WF}.sleepy", [200]).execution_id
    assert client.wait(sleeper, 60).status == "finished"
    # A guest that traps twice: two failed attempts, counted by kind (the second is the execution's failure).
    crashed = client.submit(f"{ACT}.crash", ["boom"]).execution_id
    assert client.wait(crashed, 60).outcome.failure.kind == "trap"  # type: ignore[union-attr]

    def published() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        got = samples(redis_url)
        wanted = (
            ("dolmen_lock_takeovers_total", (("kind", "activity"),)),
            ("dolmen_attempt_duration_seconds_count", (("kind", "activity"), ("outcome", "returned"))),
            ("dolmen_attempt_duration_seconds_count", (("kind", "workflow"), ("outcome", "returned"))),
            ("dolmen_replay_duration_seconds_count", ()),
            ("dolmen_timers_fired_total", ()),
            ("dolmen_attempt_failures_total", (("failure", "trap"), ("kind", "activity"))),
        )
        return got if all(got.get(key, 0) >= 1 for key in wanted) else None

    got = wait_for(published, timeout=30, what="the runner's and the scheduler's metrics in their heartbeats")
    assert got[("dolmen_lock_takeovers_total", (("kind", "activity"),))] == 1
    assert got[("dolmen_lock_takeovers_total", (("kind", "workflow"),))] == 0  # listed before the first one
    assert got[("dolmen_attempt_failures_total", (("failure", "trap"), ("kind", "activity")))] == 2
    # The workflow ran twice (up to the sleep, then after it); only the second had a log to replay.
    assert got[("dolmen_attempt_duration_seconds_count", (("kind", "workflow"), ("outcome", "returned")))] >= 2
    assert got[("dolmen_replay_duration_seconds_count", ())] >= 1
    assert got[("dolmen_replay_duration_seconds_sum", ())] > 0
