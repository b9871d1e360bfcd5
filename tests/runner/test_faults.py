"""One fault at a time, end to end with real processes, against the write protocol.

1. A stale runner (SIGSTOP past its lease) cannot write after another took
   over, for an activity alone and one a workflow calls directly; a new owner
   SIGKILLed after its takeover, with no runner left, is recovered by a fresh one.
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

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dolmen.platform.client import Client
from dolmen.platform.deploy.model import ComponentConfig, RetryPolicy
from dolmen.platform.deploy.versions import versions
from dolmen.platform.store import keys
from dolmen.platform.store.records import Event
from dolmen.platform.store.scripts import Scripts
from tests.support.faultproxy import FaultProxy, ReopenableProxy
from tests.support.guests import build_guest
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for

ACT = "testing:act/basic@1.0.0"
SLOW = f"{ACT}.slow"
CRASH = f"{ACT}.crash"
DOUBLE = f"{ACT}.double"
FAN_OUT = "testing:wf/flows@1.0.0.fan-out"
CALLS = "testing:wf-faults/calls@1.0.0"
SLOW_CALL = f"{CALLS}.slow-call"
BUSY = f"{CALLS}.busy"

pytestmark = pytest.mark.slow


def fault_flows(name: str = "wff", **settings: object) -> tuple[ComponentConfig, Path]:
    """The wf-faults workflow component (a direct call of `slow`; sleeps with children)."""
    config = ComponentConfig(name, "workflow", "", "tests/components/wf-faults", {}, **settings)  # type: ignore[arg-type]
    return config, build_guest("wf-faults", "fault-flows")


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def resume(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGCONT)


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def running_ids(client: Client) -> set[str]:
    """What `platform executions list --status running` shows."""
    states, _ = client.executions.list(status="running", limit=1000)
    return {s.id for s in states}


def unfinished_of(client: Client, ffqn: str) -> int:
    """What `platform versions` counts as unfinished executions of `ffqn`."""
    return sum(row.unfinished for row in versions(client.redis, ffqn) if row.ffqn == ffqn)


def proxy_to(redis_url: str) -> FaultProxy:
    url = urlparse(redis_url)
    return FaultProxy(url.hostname or "127.0.0.1", url.port or 6379)


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    with proxy_to(redis_url) as p:
        yield p


def proxied(processes: Processes, url: str, tmp_path: Path, name: str) -> Processes:
    """Processes talking to Redis at `url` (a proxy), with the same environment; the caller stops them."""
    log_dir = tmp_path / name
    log_dir.mkdir()
    return Processes(url, log_dir, env=processes.env)


# --------------------------------------------------------------------- 1. stale runner


def test_stale_runner_activity_finishes_once_with_the_new_owners_result(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """Two runners; the holder of a 6 s activity is SIGSTOPped past its 1 s lease: the other takes over,
    the execution stays listed as running, and the result written is the new owner's (a full 6 s after it)."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50))])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    runners = {name: processes.runner("--concurrency", "1", "--name", name) for name in ("first", "second")}
    processes.scheduler()
    processes.wait_ready(runners=2)
    execution_id = client.submit(SLOW, [6000, "alone"]).execution_id
    holder = wait_for(lambda: client.get(execution_id).owner, what="a runner to lock it")
    (other,) = set(runners) - {holder}
    os.kill(runners[holder].pid, signal.SIGSTOP)
    try:
        wait_for(lambda: client.get(execution_id).owner == other, timeout=20, what="the other runner to take over")
        assert execution_id in running_ids(client)
        assert unfinished_of(client, SLOW) == 1
    finally:
        resume(runners[holder])
    # The stale runner wakes up mid-attempt, finishes its guest call first, and is refused.
    wait_for(lambda: "lease lost" in processes.log_of(runners[holder]), timeout=15, what="the stale write")
    assert client.get(execution_id).status == "running" and execution_id in running_ids(client)
    assert unfinished_of(client, SLOW) == 1
    state = client.wait(execution_id, 30)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == "alone"
    events = client.executions.events(execution_id)
    assert types(events) == ["created", "attempt_lost", "finished"]
    lost, finished = events[1], events[2]
    assert lost.data["owner"] == holder and lost.data["attempt"] == 1
    assert finished.at - lost.at >= 6000 - 20, "the result must come from the attempt that began at the takeover"
    assert state.attempt == 2 and state.version == 2
    assert execution_id not in running_ids(client) and unfinished_of(client, SLOW) == 0


def test_stale_runner_of_a_workflows_direct_call(redis_url: str, processes: Processes, client: Client) -> None:
    """A workflow calls the 6 s activity directly (run inline by its runner); that runner is SIGSTOPped:
    the other runner takes over both, the child finishes once with its own result, the workflow once."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50)), fault_flows()])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "2000"
    runners = {name: processes.runner("--concurrency", "2", "--name", name) for name in ("first", "second")}
    processes.scheduler()
    processes.wait_ready(runners=2)
    workflow_id = client.submit(SLOW_CALL, [6000, "via-wf"]).execution_id
    child_id = wait_for(lambda: (c := client.executions.children(workflow_id)) and c[0], what="the child")
    holder = wait_for(lambda: client.get(child_id).owner, what="the child to run")
    (other,) = set(runners) - {holder}
    os.kill(runners[holder].pid, signal.SIGSTOP)
    try:
        wait_for(lambda: client.get(child_id).owner == other, timeout=20, what="the other runner to take over")
        assert child_id in running_ids(client) and unfinished_of(client, SLOW) == 1
    finally:
        resume(runners[holder])
    state = client.wait(workflow_id, 40)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == "via-wf"
    child_events = client.executions.events(child_id)
    assert types(child_events) == ["created", "attempt_lost", "finished"]
    assert child_events[1].data["owner"] == holder
    assert child_events[2].at - child_events[1].at >= 6000 - 20
    assert child_events[2].data.get("result") == "via-wf"
    events = client.executions.events(workflow_id)
    assert types(events).count("finished") == 1
    assert types(events).count("child_submitted") == 1
    assert [e.data["child_id"] for e in events if e.type == "response"] == [child_id]
    wait_for(lambda: "lease lost" in processes.log_of(runners[holder]), timeout=15, what="the stale write")
    assert not running_ids(client) & {workflow_id, child_id}


def test_new_owner_killed_and_no_runner_left(redis_url: str, processes: Processes, client: Client) -> None:
    """A directly-called child outlives its recovery timer; its runner is SIGKILLed, so only the repair
    sweep can bring the child back. The runner that takes over is SIGKILLed too, leaving none; a fresh
    runner started later finishes the workflow, the child once, on its third attempt."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50)), fault_flows()])
    processes.env["DOLMEN_LOCK_TTL_MS"] = "1000"
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "2000"
    first = processes.runner("--concurrency", "2", "--name", "first")
    scheduler = processes.scheduler()
    processes.wait_ready(runners=1)
    workflow_id = client.submit(SLOW_CALL, [4000, "kept"]).execution_id
    child_id = wait_for(lambda: (c := client.executions.children(workflow_id)) and c[0], what="the child")
    wait_for(lambda: client.get(child_id).owner == "first", what="the child to run inline")

    def timer_of_child() -> bool:
        return any(child_id in m.decode() for m in client.redis.zrange(keys.TIMERS, 0, -1))  # type: ignore[union-attr]

    # The recovery timer fires while the lease is alive (the lock is refused) and is removed; then the
    # entry it enqueued is lost too, so once the runner is gone nothing but the repair sweep knows
    # about the child.
    wait_for(timer_of_child, timeout=5, what="the child's recovery timer")
    wait_for(lambda: not timer_of_child(), timeout=10, what="the child's recovery timer to fire")
    client.redis.xtrim(keys.queue(SLOW), maxlen=0)
    assert client.get(child_id).owner == "first"
    kill(first)
    second = processes.runner("--concurrency", "2", "--name", "second")
    wait_for(lambda: client.get(child_id).owner == "second", timeout=20, what="the repair sweep to hand the child over")
    assert "re-enqueued executions" in processes.log_of(scheduler)
    kill(second)
    assert child_id in running_ids(client)
    assert workflow_id in {s.id for s in client.executions.list(active_only=True, limit=1000)[0]}
    processes.runner("--concurrency", "2", "--name", "third")
    state = client.wait(workflow_id, 45)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value == "kept"
    child = client.get(child_id)
    assert child.attempt == 3
    child_events = client.executions.events(child_id)
    assert types(child_events) == ["created", "attempt_lost", "attempt_lost", "finished"]
    assert [e.data["owner"] for e in child_events if e.type == "attempt_lost"] == ["first", "second"]
    events = client.executions.events(workflow_id)
    assert types(events).count("finished") == 1 and types(events).count("child_submitted") == 1


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
    url = urlparse(redis_url)
    proxy = ReopenableProxy(url.hostname or "127.0.0.1", url.port or 6379).start()
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
    url = urlparse(redis_url)
    proxy = ReopenableProxy(url.hostname or "127.0.0.1", url.port or 6379).start()
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

