"""Putting back the index entries a failover lost (store/reconcile.py): the decisions, and a pass on a real cluster.

tests/cluster/test_lost_writes.py makes the losses with a real failover; here the
entries are removed by hand, so each kind is checked on its own, quickly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.store.connection import connect
from dolmen.platform.store.reconcile import RECONCILED_KEY, Found, Reconciler, entries, fingerprint
from dolmen.platform.store.retention import DEFAULT_RETENTION_MS
from dolmen.platform.store.shards import Shards
from tests.support import indexes
from tests.support.cluster import ValkeyClusterForTests
from tests.support.platform import Processes, activity, deploy
from tests.support.polling import wait_for
from tests.support.servers import ValkeyForTests, flush

A = "testing:act/basic@1.0.0"
SHARDS = Shards(4)


def found(status: str, *, parent: str = "", finished_at: int = 0, retention_ms: str = "") -> Found:
    return Found("E_1", status, created_at=100, parent=parent, finished_at=finished_at, retention_ms=retention_ms)


def test_an_unfinished_execution_is_listed_in_the_executions_and_active_indexes_by_creation_time() -> None:
    for status in ("pending", "running", "blocked"):
        assert entries(found(status), 5_000, SHARDS) == [(SHARDS.executions("E_1"), 100, "E_1"), (SHARDS.active("E_1"), 100, "E_1")]


def test_an_unfinished_execution_is_listed_under_its_tags_too() -> None:
    tagged = Found("E_1", "pending", created_at=100, parent="", finished_at=0, retention_ms="", tags={"team": "a"})
    assert (SHARDS.tag("team=a", "E_1"), 100, "E_1") in entries(tagged, 5_000, SHARDS)


def test_a_finished_root_is_listed_for_expiry_until_its_retention_ends() -> None:
    assert entries(found("finished", finished_at=1_000, retention_ms="60000"), 5_000, SHARDS) == [(SHARDS.expiry("E_1"), 61_000, "E_1")]
    assert entries(found("finished", finished_at=1_000), 5_000, SHARDS) == [(SHARDS.expiry("E_1"), 1_000 + DEFAULT_RETENTION_MS, "E_1")]
    # Past its end, the retention sweep may be removing the tree right now: no entry that would outlive it.
    assert entries(found("finished", finished_at=1_000, retention_ms="2000"), 5_000, SHARDS) == []


def test_a_finished_child_and_a_state_without_status_need_nothing() -> None:
    assert entries(found("finished", parent="E_0", finished_at=1_000), 5_000, SHARDS) == []
    assert entries(found(""), 5_000, SHARDS) == []


def test_the_fingerprint_does_not_depend_on_the_order_of_the_masters() -> None:
    assert fingerprint({"b:2": "y", "a:1": "x"}) == fingerprint({"a:1": "x", "b:2": "y"}) == "a:1=x,b:2=y"
    assert fingerprint({"a:1": "x"}) != fingerprint({"a:1": "z"})  # a restarted master has a new run_id


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyClusterForTests]:
    with ValkeyClusterForTests(tmp_path_factory.mktemp("cluster"), replicas=0) as nodes:
        yield nodes


def test_a_pass_puts_back_what_the_indexes_lost_and_is_not_made_again_for_the_same_masters(cluster: ValkeyClusterForTests) -> None:
    flush(cluster.url)
    deploy(cluster.url, [activity()])
    client = Client.connect(cluster.url)
    redis = connect(cluster.url)
    try:
        shards = indexes.shards_of(client.redis)
        pending = [client.submit(f"{A}.double", [n]).execution_id for n in range(30)]  # no runner: they wait, listed
        for execution_id in pending[:20]:
            redis.zrem(shards.active(execution_id), execution_id)
            redis.zrem(shards.executions(execution_id), execution_id)
        reconciler = Reconciler(redis, shards, batch=7)
        assert reconciler.check() and reconciler.active
        steps = 0
        while reconciler.active:
            reconciler.step(0)
            steps += 1
        assert steps > 3  # small batches, master after master
        assert reconciler.restored == 40
        for execution_id in pending:
            assert indexes.zscore(client.redis, "active", execution_id) is not None
            assert indexes.zscore(client.redis, "executions", execution_id) is not None
        assert redis.get(RECONCILED_KEY) is not None
        # The same masters: nothing to do, also for another scheduler starting later.
        assert not Reconciler(redis, shards).check()
        redis.set(RECONCILED_KEY, "another set of masters")
        assert Reconciler(redis, shards).check()
    finally:
        client.close()
        redis.close()


def test_a_pass_never_starts_on_one_server(own_valkey: ValkeyForTests) -> None:
    redis = connect(own_valkey.url)
    try:
        reconciler = Reconciler(redis, Shards(1))
        assert not reconciler.check() and not reconciler.active
        assert reconciler.step(0) == 0
    finally:
        redis.close()


def test_a_scheduler_reconciles_after_the_masters_change(cluster: ValkeyClusterForTests, tmp_path: Path) -> None:
    """The scheduler process: a master restarted (a new run_id), the entries it lost are put back by the scheduler."""
    flush(cluster.url)
    deploy(cluster.url, [activity()])
    client = Client.connect(cluster.url)
    processes = Processes(cluster.url, tmp_path)
    try:
        processes.scheduler()
        processes.wait_ready(runners=0)
        execution_id = client.submit(f"{A}.double", [4]).execution_id
        shards = indexes.shards_of(client.redis)
        wait_for(lambda: client.redis.get(RECONCILED_KEY) is not None, what="the first pass at start")
        client.redis.zrem(shards.active(execution_id), execution_id)
        client.redis.set(RECONCILED_KEY, "masters before a failover")
        wait_for(lambda: indexes.zscore(client.redis, "active", execution_id) is not None, what="its active entry put back")
    finally:
        client.close()
        processes.stop()
