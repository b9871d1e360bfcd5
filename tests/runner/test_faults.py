"""One fault at a time, end to end with real processes, against the write protocol.

1. Stale runners: see test_stale_runners.py.
2. Lost replies of script calls: each request of a workflow is logged once,
   and a create whose reply was lost creates one execution.
3. A crash loop (every attempt kills its runner) ends `crashed` after
   max_attempts; an activity that traps still gets all its attempts.
4. A store outage does not use up an attempt: not during an activity's
   attempt, not while a workflow waits in memory, not when a lock's reply is
   lost more often than redis-py re-sends it.
5. Retry timers with a slow scheduler are never lost (the repair sweep off).
6. Workflows waiting in memory do not starve their own children of threads.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from dolmen.platform.store.scripts import Scripts
from tests.runner.faults import (
    BUSY,
    CRASH,
    DOUBLE,
    FAN_OUT,
    SLOW,
    fault_flows,
    kill,
    proxied,
    types,
)
from tests.support.faultproxy import FaultProxy, ReopenableProxy, proxy_to
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    with proxy_to(redis_url) as p:
        yield p


# ----------------------------------------------------------------------- 2. lost replies


def test_lost_replies_log_each_request_once(
    redis_url: str, processes: Processes, client: Client, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A runner behind a proxy loses the reply of one script call after another while three workflows
    sleep, fan out and call children directly: each finishes once with the right sum, no request twice."""
    deploy(redis_url, [activity(), fault_flows()])
    runner_side = proxied(processes, proxy.url, tmp_path, "proxied")
    try:
        runner_side.runner("--concurrency", "4")
        processes.scheduler()
        processes.wait_ready(runners=1)
        n = 8
        ids = [client.submit(BUSY, [n, 800]).execution_id for _ in range(3)]
        # Each kind of script call loses its reply again and again: one drop armed per script
        # (matched by its SHA), re-armed a little after it fired, so redis-py's re-send of that
        # very call gets through and the next call of that kind loses its reply.
        scripts = Scripts(client.redis)
        shas = {name: scripts.sha(name).encode() for name in ("lock", "commit", "finish", "block", "extend")}
        fired: Counter[str] = Counter()
        rearm_at: dict[str, float] = {name: 0.0 for name in shas}
        armed: set[str] = set()
        deadline = time.monotonic() + 60
        while any(client.get(i).status != "finished" for i in ids):
            assert time.monotonic() < deadline, f"the workflows did not finish (lost replies: {dict(fired)})"
            waiting = proxy._call(lambda: list(proxy._drop_requests))  # noqa: SLF001 - which drops are still armed
            for name in list(armed):
                if shas[name] not in waiting:
                    armed.discard(name)
                    fired[name] += 1
                    rearm_at[name] = time.monotonic() + 0.05
            for name, sha in shas.items():
                if name not in armed and time.monotonic() >= rearm_at[name] and fired[name] < 8:
                    proxy.drop_next_reply(sha)
                    armed.add(name)
            time.sleep(0.01)
        assert fired["lock"] and fired["commit"] and fired["finish"], fired
        assert proxy.dropped_replies >= 8 and sum(fired.values()) >= 8, (proxy.dropped_replies, fired)
        for workflow_id in ids:
            state = client.get(workflow_id)
            assert state.outcome is not None and state.outcome.value == 2 * n * (n + 1)
            events = client.executions.events(workflow_id)
            kinds = Counter(types(events))
            assert kinds["finished"] == 1 and kinds["delay_requested"] == 2 and kinds["child_submitted"] == 2 * n, kinds
            delays = [e.data["delay_id"] for e in events if e.type == "delay_requested"]
            children = [e.data["child_id"] for e in events if e.type == "child_submitted"]
            assert len(set(delays)) == 2 and len(set(children)) == 2 * n
            answered = [e.data.get("child_id") or e.data.get("delay_id") for e in events if e.type == "response"]
            assert Counter(answered) == Counter(children + delays)
            for child in children:
                assert types(client.executions.events(child)).count("finished") == 1
    finally:
        runner_side.stop()


def test_lost_reply_of_a_create_gives_one_execution(
    redis_url: str, processes: Processes, client: Client, proxy: FaultProxy
) -> None:
    """A client whose create's reply is lost sends it again: one execution, run once."""
    deploy(redis_url, [activity()])
    processes.runner("--concurrency", "2")
    processes.scheduler()
    processes.wait_ready(runners=1)
    through = Client.connect(proxy.url)
    try:
        through.revision()  # read before arming, so the drop hits the create
        proxy.drop_next_reply(b"EVALSHA")
        submitted = through.submit(DOUBLE, [21])
    finally:
        through.close()
    assert proxy.dropped_replies == 1
    assert submitted.created
    state = client.wait(submitted.execution_id, 30)
    assert state.outcome is not None and state.outcome.value == 42
    listed, _ = client.executions.list(ffqn=DOUBLE, limit=100)
    assert [s.id for s in listed] == [submitted.execution_id]
    assert types(client.executions.events(submitted.execution_id)) == ["created", "finished"]
    assert state.version == 1


# ------------------------------------------------------------------------- 3. crash loop


def test_crash_loop_ends_crashed_after_max_attempts(redis_url: str, processes: Processes, client: Client) -> None:
    """Every attempt of an activity kills its runner (SIGKILL on lock; a new runner is started each time):
    with max_attempts 2 it ends `crashed` at the third lock, with two `attempt_lost` in its log.
    An activity that traps still gets its two attempts."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=2, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    processes.scheduler()
    count = 0

    def start() -> tuple[str, subprocess.Popen[bytes]]:
        nonlocal count
        name = f"r{count}"
        count += 1
        return name, processes.runner("--concurrency", "1", "--name", name)

    name, runner = start()
    processes.wait_ready(runners=1)
    execution_id = client.submit(SLOW, [30_000, "never"]).execution_id
    killed: list[tuple[str, int]] = []
    deadline = time.monotonic() + 60
    while (state := client.get(execution_id)).status != "finished":
        assert time.monotonic() < deadline, f"still {state.status} after killing {killed}"
        if state.status == "running" and state.owner == name and state.attempt <= 2:
            kill(runner)  # the watcher: this attempt "killed its runner"
            killed.append((name, state.attempt))
            name, runner = start()  # the supervisor
        time.sleep(0.02)
    assert killed == [("r0", 1), ("r1", 2)]
    assert state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "crashed", state.outcome
    assert state.version == 3, "three locks: two lost attempts and the one that gave up"
    events = client.executions.events(execution_id)
    assert types(events) == ["created", "attempt_lost", "attempt_lost", "finished"]
    assert [(e.data["owner"], e.data["attempt"]) for e in events if e.type == "attempt_lost"] == [("r0", 1), ("r1", 2)]
    wait_for(lambda: "giving up after lost attempts" in processes.log_of(runner), timeout=5, what="the warning")

    trapped = client.submit(CRASH, ["boom"]).execution_id
    state = client.wait(trapped, 30)
    assert state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "trap" and "gave up after 2 attempts" in state.outcome.failure.message
    assert state.attempt == 2
    assert types(client.executions.events(trapped)) == ["created", "attempt_failed", "finished"]


# ---------------------------------------------------------------------- 4. store outage


def test_store_outage_does_not_use_up_an_attempt(
    redis_url: str, processes: Processes, client: Client, tmp_path: Path
) -> None:
    """A runner's connections are cut, then held for 1 s, then refused for 2.5 s around the moment its
    attempt writes the result (all within the 6 s lease): the execution finishes on attempt 1."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "6000"
    proxy = proxy_to(redis_url, ReopenableProxy).start()
    runner_side = proxied(processes, proxy.url, tmp_path, "proxied")
    try:
        runner = runner_side.runner("--concurrency", "1", "--name", "cut")
        processes.scheduler()
        processes.wait_ready(runners=1)
        execution_id = client.submit(SLOW, [3000, "steady"]).execution_id
        wait_for(lambda: client.get(execution_id).owner == "cut", what="the runner to lock it")
        t0 = time.monotonic()
        assert proxy.cut_all() >= 1
        time.sleep(0.3)
        proxy.pause()
        time.sleep(1.0)
        proxy.resume()
        time.sleep(max(0.0, t0 + 2.0 - time.monotonic()))
        outage_from = time.time() * 1000
        proxy.stop()  # connecting is refused now
        time.sleep(2.5)
        outage_to = time.time() * 1000
        proxy.start()
        state = client.wait(execution_id, 40)
        assert state.status == "finished" and state.outcome is not None and state.outcome.value == "steady"
        events = client.executions.events(execution_id)
        assert types(events) == ["created", "finished"]
        assert state.attempt == 1 and state.version == 1
        # The result was first sent while the store could not be reached.
        assert outage_from <= events[-1].at <= outage_to, (outage_from, events[-1].at, outage_to)
        log = runner_side.log_of(runner)
        assert "cannot extend locks" in log or "store unavailable" in log
    finally:
        runner_side.stop()
        proxy.stop()


def test_store_outage_while_a_workflow_waits_in_memory(
    redis_url: str, processes: Processes, client: Client, tmp_path: Path
) -> None:
    """A workflow asleep in memory while its runner cannot reach Valkey for 2.5 s (its lease is 6 s) wakes
    up and finishes without a failed or lost attempt."""
    deploy(redis_url, [activity(), workflow(blocking="in-memory")])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "6000"
    proxy = proxy_to(redis_url, ReopenableProxy).start()
    runner_side = proxied(processes, proxy.url, tmp_path, "proxied")
    try:
        runner_side.runner("--concurrency", "2", "--name", "cut")
        processes.scheduler()
        processes.wait_ready(runners=1)
        execution_id = client.submit("testing:wf/flows@1.0.0.sleepy", [5000]).execution_id
        wait_for(lambda: types(client.executions.events(execution_id))[-1] == "delay_requested", what="the sleep")
        assert client.get(execution_id).status == "running"  # asleep in memory, not unloaded
        time.sleep(0.5)
        proxy.stop()
        time.sleep(2.5)
        proxy.start()
        state = client.wait(execution_id, 30)
        assert state.status == "finished" and state.outcome is not None and state.outcome.ok
        assert types(client.executions.events(execution_id)) == ["created", "delay_requested", "response", "finished"]
        assert state.attempt == 1
    finally:
        runner_side.stop()
        proxy.stop()


def test_lock_whose_reply_is_lost_again_and_again(
    redis_url: str, processes: Processes, client: Client, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The lock's reply is lost four times in a row (once more than redis-py re-sends): the runner still
    runs the execution on attempt 1."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    runner_side = proxied(processes, proxy.url, tmp_path, "proxied")
    try:
        runner_side.runner("--concurrency", "1", "--name", "r")
        processes.scheduler()
        processes.wait_ready(runners=1)
        for _ in range(4):
            proxy.drop_next_reply(Scripts(client.redis).sha("lock").encode())
        execution_id = client.submit(SLOW, [200, "x"]).execution_id
        state = client.wait(execution_id, 30)
        assert proxy.dropped_replies == 4
        assert state.outcome is not None and state.outcome.value == "x"
        assert types(client.executions.events(execution_id)) == ["created", "finished"]
        assert state.attempt == 1
    finally:
        runner_side.stop()


# ------------------------------------------------------------------ 5. slow scheduler


def test_retry_timers_survive_a_slow_scheduler(
    redis_url: str, processes: Processes, client: Client, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The scheduler sees Valkey with 50 ms latency each way, so a retry re-arms its timer before the
    scheduler removes the one that fired; with the repair sweep off, every execution still gets all four
    attempts (removing the fired timer unconditionally left some pending forever)."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=4, initial_backoff_ms=1, max_backoff_ms=5))])
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "3600000"
    scheduler_side = proxied(processes, proxy.url, tmp_path, "slow")
    try:
        processes.runner("--concurrency", "4")
        scheduler_side.scheduler()
        processes.wait_ready(runners=1)
        proxy.set_latency(0.05)
        ids = [client.submit(CRASH, [f"boom-{i}"]).execution_id for i in range(10)]
        deadline = time.monotonic() + 60
        for execution_id in ids:
            state = client.wait(execution_id, max(1.0, deadline - time.monotonic()))
            assert state.status == "finished", (execution_id, state.status, state.attempt, state.not_before)
            assert state.outcome is not None and state.outcome.failure is not None
            assert state.outcome.failure.kind == "trap"
            assert state.attempt == 4
            assert types(client.executions.events(execution_id)) == ["created"] + ["attempt_failed"] * 3 + ["finished"]
    finally:
        scheduler_side.stop()


# ----------------------------------------------------------- 6. waiting in memory


def test_workflows_waiting_in_memory_leave_threads_for_children(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """One runner with two threads, workflows waiting in memory for up to 60 s: four fan-outs submitted at
    once all finish well within 30 s (only one may wait in memory; the others unload)."""
    deploy(redis_url, [activity(), workflow(blocking="in-memory", blocking_timeout_ms=60_000)])
    processes.runner("--concurrency", "2")
    processes.scheduler()
    processes.wait_ready(runners=1)
    started = time.monotonic()
    ids = [client.submit(FAN_OUT, [5]).execution_id for _ in range(4)]
    for execution_id in ids:
        state = client.wait(execution_id, max(1.0, 30 - (time.monotonic() - started)))
        assert state.status == "finished", f"{execution_id} is {state.status} after {time.monotonic() - started:.1f}s"
        assert state.outcome is not None and state.outcome.value == 30
    assert time.monotonic() - started < 30

