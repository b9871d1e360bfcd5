"""Tags on a real Valkey Cluster (3 masters): tag indexes spread over the masters, listing merges them, purge empties them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from dolmen.platform.client import Client
from dolmen.platform.store.connection import connect
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.listing import Cursor, ListFilter
from dolmen.platform.store.purge import PurgeFilter
from dolmen.platform.store.shards import tag_kind
from tests.support import indexes
from tests.support.cluster import ValkeyClusterForTests
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.servers import flush

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyClusterForTests]:
    with ValkeyClusterForTests(tmp_path_factory.mktemp("cluster")) as nodes:
        yield nodes


@pytest.fixture
def redis_url(cluster: ValkeyClusterForTests) -> str:
    """Overrides the session Valkey: the processes and the client use the cluster (through a replica's address)."""
    flush(cluster.url)
    return cluster.nodes[-1].url


def test_listing_by_tag_on_a_cluster_merges_the_masters_and_purge_removes_the_entries(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """A tagged fan-out and tagged activities are listed by tag (one page or pages of 3) from tag indexes on every master."""
    deploy(redis_url, [activity(), workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    run = uuid.uuid4().hex
    fan_out = client.submit(f"{F}.fan-out", [6], tags={"run": run, "kind": "fan"}).execution_id
    singles = [client.submit(f"{A}.double", [i], tags={"run": run}).execution_id for i in range(6)]
    untagged = client.submit(f"{A}.double", [1]).execution_id
    for execution_id in [fan_out, *singles, untagged]:
        assert client.wait(execution_id, 120).status == "finished"
    children = client.executions.children(fan_out)
    expected = {fan_out, *children, *singles}

    listed = client.executions.list(tags=[("run", run)], limit=100)[0]
    assert {s.id for s in listed} == expected and all(s.tags["run"] == run for s in listed)
    assert [s.created_at for s in listed] == sorted((s.created_at for s in listed), reverse=True)
    fanned = client.executions.list(tags=[("kind", "fan"), ("run", run)], limit=100)[0]
    assert {s.id for s in fanned} == {fan_out, *children}
    pages: list[str] = []
    cursor: Cursor | None = None
    while True:
        page, cursor = client.executions.list(tags=[("run", run)], limit=3, cursor=cursor)
        pages += [s.id for s in page]
        if len(page) < 3 or cursor is None:
            break
    assert sorted(pages) == sorted(expected) and len(pages) == len(expected)
    # Down through `next` and back up through `previous`, and a filter by outcome, across the masters.
    tagged = ListFilter(tags=(("run", run),))
    down = [client.executions.page(tagged, None, 3)]
    while down[-1].next is not None:
        down.append(client.executions.page(tagged, down[-1].next, 3))
    up = [down[-1]]
    while up[-1].previous is not None:
        up.append(client.executions.page(tagged, up[-1].previous, 3))
    assert [[s.id for s in p.states] for p in reversed(up)] == [[s.id for s in p.states] for p in down]
    assert [s.id for p in down for s in p.states] == [s.id for s in listed]
    assert {s.id for s in client.executions.list(tags=[("run", run)], outcome="ok", limit=100)[0]} == expected

    store = connect(redis_url)
    try:
        assert isinstance(store, redis.RedisCluster)
        shards = indexes.shards_of(store)
        assert shards.count == 6
        holding = {store.keyslot(key) for key in shards.every(tag_kind(f"run={run}")) if store.exists(key)}
        masters = {store.nodes_manager.get_node_from_slot(slot).name for slot in holding}
        assert len(masters) >= 2, "the tag's index is sharded over the masters"
        report = client.purge(PurgeFilter(before_ms=now_ms() + 1000))
        assert report.executions == len(expected) + 1
        assert indexes.zcard(store, tag_kind(f"run={run}")) == 0 and indexes.zcard(store, tag_kind("kind=fan")) == 0
    finally:
        store.close()
    assert client.executions.list(tags=[("run", run)])[0] == []
