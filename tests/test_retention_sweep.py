"""Retention with real runner and scheduler processes: expired trees vanish, per function; running ones stay.

The slow test submits many short executions with a short retention and checks
that Valkey's memory comes back to where it was (size: DOLMEN_RETENTION_SCALE).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig
from dolmen.platform.errors import NotFoundError
from dolmen.platform.store import keys
from dolmen.platform.store.purge import PurgeFilter
from dolmen.platform.store.retention import DEFAULT_RETENTION_MS
from tests.support.guests import build_guest
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for
from tests.support import indexes

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"
P = "testing:parent/parents@1.0.0"
# The slow test's size: executions = 1000 x scale (at least 100).
SCALE = float(os.environ.get("DOLMEN_RETENTION_SCALE") or "1")


def parent_workflow(**settings: object) -> tuple[ComponentConfig, Path]:
    """The wf-parent component: workflows calling the wf-basic workflows."""
    return ComponentConfig("parent", "workflow", "", "tests/components/wf-parent", {}, **settings), build_guest("wf-parent", "parent-flows")  # type: ignore[arg-type]


def tree_keys(client: redis.Redis, root: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=f"*{{{root}}}*", count=1000))  # type: ignore[union-attr]


def descendants(client: Client, execution_id: str) -> list[str]:
    """Every execution below `execution_id`, read from the logs."""
    out: list[str] = []
    for child in client.executions.children(execution_id):
        out += [child, *descendants(client, child)]
    return out


def finished(client: Client, execution_id: str, timeout: float = 120) -> None:
    state = client.wait(execution_id, timeout)
    assert state.status == "finished", f"{execution_id} is {state.status}"


def test_the_scheduler_removes_trees_once_their_functions_retention_passed(redis_url: str, processes: Processes, client: Client) -> None:
    """A function's own retention removes its whole tree and idempotency key; other functions keep theirs."""
    deploy(redis_url, [activity(), workflow(retention_ms=3_600_000, function_retention_ms={f"{F}.serial": 1000})])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    short = client.submit(f"{F}.serial", [3], idempotency_key="retention-short").execution_id
    kept = client.submit(f"{F}.fan-out", [2], idempotency_key="retention-kept").execution_id
    plain = client.submit(f"{A}.double", [2]).execution_id
    for execution_id in (short, kept, plain):
        finished(client, execution_id)
    tree = [short, *descendants(client, short)]
    assert len(tree) == 4
    redis_ = client.redis
    wait_for(lambda: not tree_keys(redis_, short), timeout=30, what=f"the tree of {short} to be removed")
    assert all(indexes.zscore(redis_, "executions", i) is None and indexes.zscore(redis_, "active", i) is None for i in tree)
    assert indexes.zscore(redis_, "expiry", short) is None
    assert redis_.get(keys.idempotency("retention-short")) is None
    with pytest.raises(NotFoundError, match="was removed once its retention passed"):
        client.get(short)
    # The same key now makes a new execution.
    again = client.submit(f"{F}.serial", [3], idempotency_key="retention-short")
    assert again.created and again.execution_id != short
    # The others stay, listed for when their retention ends: the component's, and the platform's default.
    kept_state, plain_state = client.get(kept), client.get(plain)
    assert indexes.zscore(redis_, "expiry", kept) == kept_state.finished_at + 3_600_000  # type: ignore[operator]
    assert indexes.zscore(redis_, "expiry", plain) == plain_state.finished_at + DEFAULT_RETENTION_MS  # type: ignore[operator]
    assert redis_.get(keys.idempotency("retention-kept")) == kept.encode()
    assert len(client.executions.children(kept)) == 2


def test_a_tree_waits_for_descendants_left_running(redis_url: str, processes: Processes, client: Client) -> None:
    """A cancelled parent's tree is kept while the children of its `complete` join set still run, then removed."""
    deploy(redis_url, [activity(), workflow(), parent_workflow(retention_ms=500)])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    parent = client.submit(f"{P}.hold", [6000]).execution_id
    child = f"{parent}.1"
    wait_for(lambda: len(client.executions.children(child)) == 2, timeout=60, what="the child workflow's children")
    assert client.cancel(parent) == "requested"
    finished(client, parent, 60)
    finished(client, child, 60)
    grandchildren = client.executions.children(child)
    tree = [parent, child, *grandchildren]
    assert any(client.get(g).status != "finished" for g in grandchildren), "the grandchildren finished too soon for this test"
    # Well past the root's retention (500 ms), the whole tree is there while a grandchild runs.
    time.sleep(1.5)
    present = set(tree_keys(client.redis, parent))
    if any(client.get(g).status != "finished" for g in grandchildren):
        assert {keys.state(i) for i in tree} <= present and {keys.log(i) for i in tree} <= present
    for grandchild in grandchildren:
        finished(client, grandchild, 90)
    wait_for(lambda: not tree_keys(client.redis, parent), timeout=30, what=f"the tree of {parent} to be removed")
    assert all(indexes.zscore(client.redis, "executions", i) is None for i in tree)


def test_a_scheduled_execution_is_a_tree_of_its_own_with_its_functions_retention(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """An execution a workflow schedules goes after its own function's retention, not the workflow's."""
    deploy(redis_url, [activity(retention_ms=3000), workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    flow = client.submit(f"{F}.schedule-then-sleep", [21, 0, 100]).execution_id
    finished(client, flow)
    scheduled = client.get(flow).outcome.value  # type: ignore[union-attr]
    assert isinstance(scheduled, str) and not scheduled.startswith(flow)
    wait_for(lambda: client.executions.get(scheduled) is not None, timeout=30, what=f"{scheduled} to be created")
    finished(client, scheduled)
    ended = client.get(scheduled).finished_at
    wait_for(lambda: indexes.zscore(client.redis, "expiry", scheduled) is not None, timeout=10, what=f"{scheduled} to be listed")
    assert indexes.zscore(client.redis, "expiry", scheduled) == ended + 3000  # type: ignore[operator]
    wait_for(lambda: not tree_keys(client.redis, scheduled), timeout=30, what=f"the scheduled {scheduled} to be removed")
    state = client.get(flow)
    assert indexes.zscore(client.redis, "expiry", flow) == state.finished_at + DEFAULT_RETENTION_MS  # type: ignore[operator]


def _used_memory(client: redis.Redis) -> int:
    """used_memory of every master, without the replication buffers.

    Those grow with the writes up to repl-backlog-size however much data is
    kept: on a cluster with replicas, a master's backlog grew from 0.25 to
    4.8 MiB over this test. A cluster's masters are summed: one master alone
    may hold much more than its share (its slots' deployments), which hides
    the executions' part.
    """
    infos = (
        list(client.info("memory", target_nodes=redis.RedisCluster.PRIMARIES).values())
        if isinstance(client, redis.RedisCluster)
        else [client.info("memory")]
    )
    return sum(int(m["used_memory"]) - int(m.get("mem_replication_backlog", 0)) - int(m.get("mem_clients_slaves", 0)) for m in infos)  # type: ignore[union-attr,arg-type,index]


@pytest.mark.slow
def test_many_short_executions_leave_no_memory_behind(redis_url: str, processes: Processes, client: Client) -> None:
    """Once many short executions with a short retention are removed, Valkey's used_memory is within 10% of before.

    They run with no scheduler, so none is removed before all are there (the
    peak shows what keeping them would cost); the scheduler's sweep and a
    purge then remove them all.
    """
    count = max(100, round(1000 * SCALE))
    message = "x" * 2000  # in the params, the state and the captured output: what keeping them would show
    deploy(redis_url, [activity(retention_ms=1000), workflow(retention_ms=1000)])
    redis_ = client.redis

    def submit(n: int, offset: int) -> list[str]:
        def one(i: int) -> str:
            key = f"many-{offset + i}"
            if i % 10 == 0:  # a tree of three: serial(2) calls double twice
                return client.submit(f"{F}.serial", [2], idempotency_key=key).execution_id
            return client.submit(f"{A}.shout", [message], idempotency_key=key).execution_id

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(one, range(n)))
        for execution_id in ids:
            finished(client, execution_id, 300)
        return ids

    def all_gone() -> bool:
        kinds = ("executions", "active", "expiry", "dirty")
        return not any(indexes.zcard(redis_, kind) for kind in kinds) and not list(redis_.scan_iter(match=f"{keys.PREFIX}:idem:*"))

    def settle() -> int:
        """Wait for every execution to be removed, stop every process; used_memory then."""
        wait_for(all_gone, timeout=120 + 60 * SCALE, what="every execution and its keys to be removed")
        processes.stop()
        processes.procs.clear()
        time.sleep(1)  # Valkey's cron shrinks emptied tables
        return _used_memory(redis_)

    # A warm-up run, removed like the others, makes every long-lived key (queues and their consumer groups) exist.
    processes.fleet("warm-up", concurrency=8)
    submit(50, 0)
    baseline = settle()

    processes.runner("--concurrency", "8", "--name", "many")
    ids = submit(count, 100_000)
    wait_for(lambda: indexes.zcard(redis_, "expiry") == count, timeout=30, what="every finished root to be listed for removal")
    peak = _used_memory(redis_)
    processes.scheduler()
    wait_for(lambda: indexes.zcard(redis_, "expiry") == 0, timeout=60 + 60 * SCALE, what="the retention sweep")
    report = client.purge(PurgeFilter(int(time.time() * 1000)))  # whatever is left, by hand (nothing, normally)
    after = settle()
    print(f"\n{count} executions ({len(report.purged)} purged by hand): used_memory {baseline} before, {peak} with them, {after} after")
    assert len(ids) == count
    if SCALE >= 1:
        assert peak > baseline * 1.10, "too few executions for the 10% check to mean anything"
    assert abs(after - baseline) <= baseline * 0.10, f"used_memory {after} is not within 10% of {baseline} (peak {peak})"
