"""Writes a failover loses: what asynchronous replication cannot keep, Dolmen must still recover from.

README ("On a Valkey or Redis Cluster"): a write a master acknowledged and died before passing on is
lost with it, and "a lost result or step is run again". Here a master is killed ahead of its
replica on purpose: its proxy holds the replication link (`FaultProxy.hold_replication`), the master
goes on answering, and once it is killed the replica takes over without exactly the bytes the proxy
kept. The execution's id is picked so that its tree is on another master than its shard of the
queues, timers and active index (store/shards.py), so that one side goes back in time while what
it did to the other survives: what a real failover under load does to some executions.

Each test is an expected failure (strict) until Dolmen recovers from what it shows.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dolmen.platform.client import Client
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.shards import Shards
from tests.support import indexes
from tests.support.cluster import ValkeyClusterForTests
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for

pytestmark = pytest.mark.slow

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ValkeyClusterForTests]:
    with ValkeyClusterForTests(tmp_path / "cluster", proxied=True) as nodes:
        yield nodes


class GatedServer:
    """HTTP on loopback: `/gate/KEY` answers `KEY`, once `open(KEY)` was called."""

    def __init__(self) -> None:
        self.gates: dict[str, threading.Event] = {}
        gates = self.gates

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                key = self.path.rsplit("/", 1)[-1]
                gates.setdefault(key, threading.Event()).wait(60)
                self.send_response(200)
                self.send_header("Content-Length", str(len(key)))
                self.end_headers()
                self.wfile.write(key.encode())

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.port = int(self.http.server_address[1])
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.port}/gate/{key}"

    def open(self, key: str) -> None:
        self.gates.setdefault(key, threading.Event()).set()

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self.http.shutdown()
        self.http.server_close()


def root_away_from_its_shard(cluster: ValkeyClusterForTests, shards: Shards) -> tuple[str, int, int]:
    """A new root id whose tree is on another master than its shard (queues, timers, indexes): the id and both masters."""
    for _ in range(1000):
        execution_id = ExecutionId.new().value
        tree, shard = cluster.master_of(keys.state(execution_id)), cluster.master_of(shards.active(execution_id))
        if tree != shard:
            return execution_id, tree, shard
    raise AssertionError("every id drawn has its tree on the master of its shard")


def test_an_activity_whose_finish_was_lost_runs_again(cluster: ValkeyClusterForTests, tmp_path: Path) -> None:
    """An activity finished on a master that died before its replica had the finish: it runs again and finishes."""
    deploy(cluster.url, [activity()])
    client = Client.connect(cluster.seeds_url)
    shards = indexes.shards_of(client.redis)
    execution_id, master, _ = root_away_from_its_shard(cluster, shards)
    replica = cluster.topology()[master][0]
    processes = Processes(cluster.seeds_url, tmp_path, env={"DOLMEN_REPAIR_AFTER_MS": "2000", "DOLMEN_LOCK_TTL_MS": "1500"})
    try:
        processes.runner()
        processes.scheduler()
        processes.wait_ready()
        client.submit(f"{A}.slow", [2500, "again"], execution_id=execution_id)
        with cluster.direct(replica) as on_replica:
            on_replica.execute_command("READONLY")
            wait_for(lambda: on_replica.hget(keys.state(execution_id), "status") == b"running", what="the replica to see it run")
        proxy = cluster.proxies[master]
        proxy.hold_replication()  # from here on, nothing of this master reaches its replica
        assert client.wait(execution_id, 30).status == "finished"
        wait_for(lambda: indexes.zscore(client.redis, "active", execution_id) is None, what="its index entry removed")
        assert cluster.quiesce(master, replica, proxy.held_bytes) is not None
        cluster.nodes[master].kill()
        lost = proxy.release_replication()
        assert b"finished" in lost and execution_id.encode() in lost
        cluster.wait_role(replica, "master")
        cluster.wait_ok(30)
        cluster.rejoin(master)
        # The tree went back to `running` on a lease nobody renews, unlisted where the repair sweep looks.
        # The scheduler saw the masters change and listed it again; its lease ran out; it ran again.
        state = client.wait(execution_id, 20)
        assert state.outcome is not None and state.outcome.value == "again"
        assert [e.type for e in client.executions.events(execution_id)].count("finished") == 1
    finally:
        client.close()
        processes.stop()


def test_a_workflow_whose_delay_timer_was_lost_wakes_up(cluster: ValkeyClusterForTests, tmp_path: Path) -> None:
    """A durable sleep's timer written on a master that died before its replica had it: the workflow still wakes up."""
    deploy(cluster.url, [activity(), workflow(blocking="unload")])
    client = Client.connect(cluster.seeds_url)
    shards = indexes.shards_of(client.redis)
    execution_id, _, timers = root_away_from_its_shard(cluster, shards)  # (its timers share its index entry's shard)
    replica = cluster.topology()[timers][0]
    processes = Processes(cluster.seeds_url, tmp_path, env={"DOLMEN_REPAIR_AFTER_MS": "2000", "DOLMEN_LOCK_TTL_MS": "1500"})
    try:
        client.submit(f"{F}.sleepy", [3000], execution_id=execution_id)  # no runner yet: created, queued, indexed
        with cluster.direct(replica) as on_replica:
            on_replica.execute_command("READONLY")
            active = shards.active(execution_id)
            wait_for(lambda: on_replica.zscore(active, execution_id) is not None, what="the replica to have its index entry")
        proxy = cluster.proxies[timers]
        proxy.hold_replication()  # the timer goes to this master; its replica never gets it
        processes.runner()
        processes.scheduler()
        processes.wait_ready()
        timer = f"{execution_id}.d1".encode()
        wait_for(lambda: any(timer in m for m in indexes.zmembers(client.redis, "timers")), what="the delay's timer")
        wait_for(lambda: client.get(execution_id).status == "blocked", what="the workflow to unload")
        assert cluster.quiesce(timers, replica, proxy.held_bytes) is not None
        cluster.nodes[timers].kill()
        assert timer in proxy.release_replication()
        cluster.wait_role(replica, "master")
        cluster.wait_ok(30)
        cluster.rejoin(timers)
        # The timer is gone (the repair sweep arms it again 2 s after it was due, maybe already).
        assert indexes.zscore(client.redis, "active", execution_id) is not None  # the sweep sees it, blocked
        state = client.wait(execution_id, 60)
        assert state.outcome is not None and state.outcome.value >= 3000
    finally:
        client.close()
        processes.stop()


def test_an_execution_whose_queue_and_index_entries_were_lost_still_runs(cluster: ValkeyClusterForTests, tmp_path: Path) -> None:
    """Created on one master, its queue and index entries on another that died before its replica had them: it still runs."""
    deploy(cluster.url, [activity()])
    client = Client.connect(cluster.seeds_url)
    shards = indexes.shards_of(client.redis)
    execution_id, _, index = root_away_from_its_shard(cluster, shards)  # (its queue and index entries share a shard)
    replica = cluster.topology()[index][0]
    processes = Processes(cluster.seeds_url, tmp_path, env={"DOLMEN_REPAIR_AFTER_MS": "2000"})
    try:
        proxy = cluster.proxies[index]
        proxy.hold_replication()
        client.submit(f"{A}.double", [21], execution_id=execution_id)  # no runner yet: it waits in its queue
        wait_for(lambda: indexes.zscore(client.redis, "active", execution_id) is not None, what="its index entry")
        assert client.redis.llen(keys.outbox(execution_id)) == 0  # delivered: its tree has no message left
        assert cluster.quiesce(index, replica, proxy.held_bytes) is not None
        cluster.nodes[index].kill()
        assert execution_id.encode() in proxy.release_replication()
        cluster.wait_role(replica, "master")
        cluster.wait_ok(30)
        cluster.rejoin(index)
        assert client.get(execution_id).status == "pending"  # its tree kept it
        assert indexes.zscore(client.redis, "active", execution_id) is None
        processes.runner()
        processes.scheduler()
        processes.wait_ready()
        state = client.wait(execution_id, 10)
        assert state.outcome is not None and state.outcome.value == 42
    finally:
        client.close()
        processes.stop()


def test_a_workflow_does_not_finish_on_a_response_the_failover_lost(cluster: ValkeyClusterForTests, tmp_path: Path) -> None:
    """A workflow waiting in memory took a response the failover then lost: it does not finish on it, with a log that lacks it."""
    gates = GatedServer()
    deploy(cluster.url, [
        activity(allowed_hosts=(f"127.0.0.1:{gates.port}",)),
        workflow(blocking="in-memory", blocking_timeout_ms=60_000),
    ])  # fmt: skip
    client = Client.connect(cluster.seeds_url)
    shards = indexes.shards_of(client.redis)
    execution_id, tree, _ = root_away_from_its_shard(cluster, shards)
    replica = cluster.topology()[tree][0]
    processes = Processes(cluster.seeds_url, tmp_path, env={"DOLMEN_REPAIR_AFTER_MS": "2000", "DOLMEN_LOCK_TTL_MS": "1500"})

    def types() -> list[str]:
        return [event.type for event in client.executions.events(execution_id)]

    try:
        processes.runner()
        processes.scheduler()
        processes.wait_ready()
        client.submit(f"{F}.fetch-all", [[gates.url("a"), gates.url("b")]], execution_id=execution_id)
        with cluster.direct(replica) as on_replica:
            on_replica.execute_command("READONLY")
            log = keys.log(execution_id)
            wait_for(lambda: on_replica.xlen(log) >= 5, what="the replica to have both children's submissions")
        proxy = cluster.proxies[tree]
        proxy.hold_replication()
        gates.open("a")  # child 1 finishes; the workflow, in memory, takes its response and waits for child 2
        wait_for(lambda: types()[-2:] == ["response", "join_next"], what="the workflow to take the first response")
        assert cluster.quiesce(tree, replica, proxy.held_bytes) is not None
        cluster.nodes[tree].kill()
        assert b"response" in proxy.release_replication()
        cluster.wait_role(replica, "master")
        cluster.wait_ok(30)
        assert "response" not in types()  # the first response is gone from the log
        gates.open("b")  # child 2 finishes on the new master; its response wakes the workflow in memory
        # Its next write finds the log back past what it read: refused, released, replayed from the log.
        # Child 1 went back to running (its finish was lost with the response): it runs again.
        state = client.wait(execution_id, 30)
        events = client.executions.events(execution_id)
        answered = {event.data.get("child_id") for event in events if event.type == "response"}
        submitted = [event.data["child_id"] for event in events if event.type == "child_submitted"]
        assert state.status == "finished", state
        assert answered >= set(submitted), f"finished on {answered} of {submitted}"
        assert state.outcome is not None and state.outcome.failure is None, state.outcome
    finally:
        gates.close()
        client.close()
        processes.stop()
