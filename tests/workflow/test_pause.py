"""Pause and resume of executions and of whole functions, on real runner and scheduler processes.

The tests that pause something before any runner may see it start their own processes; the others share one
runner and scheduler on a Valkey of the module's own (tests/support/shared.py), each with its own executions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from dolmen.platform.errors import NotFoundError, NotPausableError
from dolmen.platform.store.records import ExecutionState
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for
from tests.support.shared import SharedPlatform, settle_leftovers, shared_platform

F = "testing:wf/flows@1.0.0"
A = "testing:act/basic@1.0.0"


def types(client: Client, execution_id: str) -> list[str]:
    return [e.type for e in client.executions.events(execution_id)]


def stays(client: Client, execution_id: str, seconds: float) -> ExecutionState:
    """The execution's state after `seconds` during which it never finished and its lease version never moved."""
    before = client.get(execution_id)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = client.get(execution_id)
        assert now.status != "finished", f"{execution_id} finished while paused: {now.outcome}"
        assert now.version == before.version, f"{execution_id} was locked while paused ({before.version} -> {now.version})"
        time.sleep(0.1)
    return client.get(execution_id)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    """One platform for the tests that need no moment without processes: a runner, and a scheduler whose repair
    sweep looks often (it must leave paused executions alone), on a Valkey of the module's own."""
    with shared_platform(tmp_path_factory.mktemp("pause"), [activity(), workflow()], env={"DOLMEN_REPAIR_AFTER_MS": "300"}, gateway=False) as platform:
        yield platform


@pytest.fixture
def shared_url(shared: SharedPlatform) -> Iterator[str]:
    """The shared platform's Valkey; after the test, what it left unfinished is cancelled and paused functions resumed,
    and the module's deployment is back."""
    yield shared.url
    deploy(shared.url, [activity(), workflow()])
    settle_leftovers(shared.url)


@pytest.mark.parametrize("blocking", ["in-memory", "unload"])
def test_a_workflow_paused_while_sleeping_gets_its_timer_but_moves_only_once_resumed(
    shared_url: str, shared_client: Client, blocking: str
) -> None:
    """A sleeping workflow paused before its timer fires logs the response, stays put, and finishes once resumed."""
    client = shared_client
    deploy(shared_url, [activity(), workflow(blocking=blocking)])  # (the scheduler's repair sweep looks often: it must leave it alone)
    execution_id = client.submit(f"{F}.sleepy", [1500]).execution_id
    wait_for(lambda: "delay_requested" in types(client, execution_id), timeout=60, what="the sleep's request")
    assert client.pause(execution_id).changed
    wait_for(lambda: "response" in types(client, execution_id), timeout=30, what="the timer's response while paused")
    held = stays(client, execution_id, 2.0)
    assert held.paused and held.status == "pending"  # it has work, for when it is resumed
    result = client.resume(execution_id)
    assert result.changed and result.queued
    state = client.wait(execution_id, 60)
    assert state.status == "finished" and state.outcome is not None and state.outcome.value >= 1500
    log = types(client, execution_id)
    assert log.count("paused") == 1 and log.count("resumed") == 1 and log.count("response") == 1
    assert log.index("paused") < log.index("response") < log.index("resumed")


def test_a_paused_pending_activity_is_never_locked_until_resumed(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """A queued activity paused before any runner took it is dropped from the queue unrun; resume queues it again."""
    deploy(redis_url, [activity(), workflow()])
    execution_id = client.submit(f"{A}.double", [21]).execution_id
    assert client.pause(execution_id).changed
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "300"
    processes.runner()
    processes.scheduler()
    processes.wait_ready()
    held = stays(client, execution_id, 2.5)
    assert held.paused and held.status == "pending" and held.attempt == 0
    assert client.resume(execution_id).queued
    state = client.wait(execution_id, 60)
    assert state.outcome is not None and state.outcome.value == 42
    assert types(client, execution_id) == ["created", "paused", "resumed", "finished"]


def test_pausing_twice_changes_nothing_and_refusals_name_the_reason(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """Pause and resume are idempotent; an unknown id is not found; a finished execution cannot be paused."""
    deploy(redis_url, [activity(), workflow()])
    execution_id = client.submit(f"{A}.double", [1]).execution_id
    assert client.pause(execution_id).changed
    assert not client.pause(execution_id).changed
    assert types(client, execution_id).count("paused") == 1
    assert client.get(execution_id).to_json()["paused"] is True
    assert client.resume(execution_id).changed
    assert not client.resume(execution_id).changed
    assert "paused" not in client.get(execution_id).to_json()
    with pytest.raises(NotFoundError, match="E_01JD8X3K5QZ6V2N4M7P9R0S1T2 does not exist"):
        client.pause("E_01JD8X3K5QZ6V2N4M7P9R0S1T2")
    processes.runner()
    client.wait(execution_id, 60)
    with pytest.raises(NotPausableError, match="has already finished; there is nothing to pause"):
        client.pause(execution_id)
    with pytest.raises(NotPausableError, match="has already finished; there is nothing to resume"):
        client.resume(execution_id)


def test_a_paused_execution_can_still_be_cancelled(redis_url: str, processes: Processes, client: Client) -> None:
    """Cancelling a paused activity finishes it at once; a paused workflow is locked once, to cancel, and finishes cancelled."""
    deploy(redis_url, [activity(), workflow(blocking="unload")])
    activity_id = client.submit(f"{A}.double", [1]).execution_id
    assert client.pause(activity_id).changed
    assert client.cancel(activity_id) == "cancelled"
    assert client.get(activity_id).status == "finished"
    processes.runner()
    processes.scheduler()
    workflow_id = client.submit(f"{F}.sleepy", [3_600_000]).execution_id
    wait_for(lambda: client.get(workflow_id).status == "blocked", timeout=60, what="the workflow to unload")
    assert client.pause(workflow_id).changed
    assert client.cancel(workflow_id) == "requested"
    state = client.wait(workflow_id, 60)
    assert state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "cancelled"


def test_a_paused_function_holds_across_a_runner_restart_and_resume_releases_all(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """Runners take no execution of a paused function, also after a restart; resuming the function runs them all."""
    deploy(redis_url, [activity(), workflow()])
    assert client.pause_function(f"{A}.double")
    assert not client.pause_function(f"{A}.double")
    processes.env["DOLMEN_REPAIR_AFTER_MS"] = "300"
    first = processes.runner()
    processes.scheduler()
    processes.wait_ready()
    ids = [client.submit(f"{A}.double", [i]).execution_id for i in range(3)]
    # Another function runs meanwhile: only the paused one is held.
    other = client.submit(f"{A}.slow", [1, "x"]).execution_id
    assert client.wait(other, 60).status == "finished"
    for execution_id in ids:
        stays(client, execution_id, 0.5)
    first.terminate()
    first.wait(30)
    processes.runner()
    processes.wait_ready()
    time.sleep(1.5)
    for execution_id in ids:
        state = stays(client, execution_id, 0.5)
        assert state.status == "pending" and state.attempt == 0
    assert client.paused_functions().keys() == {f"{A}.double"}
    assert client.resume_function(f"{A}.double")
    assert not client.resume_function(f"{A}.double")
    for i, execution_id in enumerate(ids):
        state = client.wait(execution_id, 60)
        assert state.outcome is not None and state.outcome.value == 2 * i


def test_a_workflow_runs_no_child_of_a_paused_function_inline(shared_client: Client) -> None:
    """Direct calls and join-set children of a paused activity are queued, not run by the workflow's runner, until it is resumed."""
    client = shared_client
    assert client.pause_function(f"{A}.double")
    time.sleep(2.5)  # runners read the paused functions every second, between reads that block up to a second
    serial = client.submit(f"{F}.serial", [2]).execution_id
    fanned = client.submit(f"{F}.fan-out", [3]).execution_id

    def children(execution_id: str) -> list[str]:
        return [e.data["child_id"] for e in client.executions.events(execution_id) if e.type == "child_submitted"]

    wait_for(lambda: len(children(serial)) == 1 and len(children(fanned)) == 3, timeout=60, what="the children's requests")
    time.sleep(2.0)
    for child in children(serial) + children(fanned):
        state = client.get(child)
        assert state.status == "pending" and state.attempt == 0, f"{child} ran while its function was paused"
    assert client.get(serial).status != "finished" and client.get(fanned).status != "finished"
    assert client.resume_function(f"{A}.double")
    assert client.wait(serial, 60).outcome.value == 6  # type: ignore[union-attr]
    assert client.wait(fanned, 60).outcome.value == 12  # type: ignore[union-attr]


def test_a_retry_that_falls_due_while_paused_waits_for_resume(shared_url: str, shared_client: Client) -> None:
    """A failed attempt's retry timer fires during the pause without running it; resumed, it runs its next attempts."""
    client = shared_client
    deploy(shared_url, [activity(retry=RetryPolicy(max_attempts=3, initial_backoff_ms=1500, max_backoff_ms=1500)), workflow()])
    execution_id = client.submit(f"{A}.crash", ["boom"]).execution_id
    wait_for(lambda: "attempt_failed" in types(client, execution_id), timeout=60, what="the first failed attempt")
    assert client.pause(execution_id).changed
    retry_at = client.get(execution_id).not_before
    assert retry_at > 0
    wait_for(lambda: time.time() * 1000 > retry_at + 1500, timeout=10, what="the retry to fall due")
    held = stays(client, execution_id, 1.0)
    assert held.attempt == 1 and types(client, execution_id) == ["created", "attempt_failed", "paused"]
    assert client.resume(execution_id).queued
    state = client.wait(execution_id, 60)
    assert state.outcome is not None and state.outcome.failure is not None and state.attempt == 3
    assert types(client, execution_id) == ["created", "attempt_failed", "paused", "resumed", "attempt_failed", "finished"]


def test_a_workflow_waiting_in_memory_unloads_when_its_function_is_paused(shared_client: Client) -> None:
    """Paused as a function while it sleeps in memory, a workflow does not go on when its timer fires; resumed, it finishes."""
    client = shared_client
    execution_id = client.submit(f"{F}.sleepy", [4000]).execution_id
    wait_for(lambda: "delay_requested" in types(client, execution_id), timeout=60, what="the sleep's request")
    assert client.pause_function(f"{F}.sleepy")
    wait_for(lambda: "response" in types(client, execution_id), timeout=30, what="the timer's response")
    held = stays(client, execution_id, 2.0)
    assert held.status == "pending" and not held.paused
    assert client.resume_function(f"{F}.sleepy")
    state = client.wait(execution_id, 60)
    assert state.outcome is not None and state.outcome.value >= 4000
