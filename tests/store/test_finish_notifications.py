"""Finish notifications: the scripts that write `finished` publish the execution's id, on the channel Python names."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from importlib.resources import files

import pytest
import redis

from dolmen.platform.errors import FencedError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.records import Outcome

ACT = "t:p/i@1.0.0.act"
WF = "t:p/i@1.0.0.wf"


@pytest.fixture
def finished_ids(client: redis.Redis) -> Iterator[redis.client.PubSub]:
    """A subscription to the finish channel, ready before the test writes."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.FINISHED_CHANNEL)
    assert pubsub.get_message(timeout=5) is None  # the confirmation, consumed
    yield pubsub
    pubsub.close()


def published(pubsub: redis.client.PubSub, wait_s: float = 2.0) -> list[str]:
    """The ids published within `wait_s` of the last one (or of the call)."""
    out: list[str] = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=min(left, 0.2))
        if message is not None and message["type"] == "message":
            out.append(message["data"].decode())
            deadline = time.monotonic() + 0.2
    return out


def new(kind: str, execution_id: str, ffqn: str) -> NewExecution:
    return NewExecution(id=execution_id, ffqn=ffqn, kind=kind, digest="sha256:x", params=[1])  # type: ignore[arg-type]


def locked(client: redis.Redis, execution: NewExecution) -> Lease:
    ExecutionStore(client).create(execution)
    lease = Leases(client).lock(execution.id, "r1", 30_000)
    assert isinstance(lease, Lease)
    return lease


def test_the_prelude_publishes_on_the_channel_that_keys_names() -> None:
    """The Lua channel names and `keys.FINISHED_CHANNEL`, `keys.CANCEL_CHANNEL` are the same strings."""
    prelude = files("dolmen.platform.store").joinpath("lua", "_prelude.lua").read_text()
    match = re.search(r"^local FINISHED_CHANNEL = '([^']+)'$", prelude, re.MULTILINE)
    assert match is not None, "the prelude defines FINISHED_CHANNEL"
    assert match.group(1) == keys.FINISHED_CHANNEL
    assert "local function notify_finished(id)" in prelude
    match = re.search(r"^local CANCEL_CHANNEL = '([^']+)'$", prelude, re.MULTILINE)
    assert match is not None and match.group(1) == keys.CANCEL_CHANNEL


def test_finishing_a_root_and_a_child_publishes_each_id(client: redis.Redis, finished_ids: redis.client.PubSub) -> None:
    """`finish` publishes the id of the execution it finished, for a root and for a child (whose key has a dot)."""
    root = ExecutionId.new()
    child = root.child(1)
    root_lease = locked(client, new("workflow", root.value, WF))
    child_lease = locked(client, new("activity", child.value, ACT))
    leases = Leases(client)
    leases.finish(child_lease, Outcome(value=2))
    leases.finish(root_lease, Outcome(value=3))
    # Filtered: on a cluster, an earlier test's message may come late over the cluster bus.
    assert [i for i in published(finished_ids) if i in (child.value, root.value)] == [child.value, root.value]


def test_a_refused_finish_publishes_nothing(client: redis.Redis, finished_ids: redis.client.PubSub) -> None:
    """A fenced finish (the lease was taken over) changes nothing, so it notifies nobody."""
    lease = locked(client, new("activity", ExecutionId.new().value, ACT))
    client.hset(keys.state(lease.id), "version", "99")
    with pytest.raises(FencedError):
        Leases(client).finish(lease, Outcome(value=1))
    assert published(finished_ids, wait_s=0.5) == []


def test_cancelling_a_pending_activity_publishes_its_id(client: redis.Redis, finished_ids: redis.client.PubSub) -> None:
    """`cancel` finishes a pending activity at once, and says so; a running one only learns of it later."""
    store = ExecutionStore(client)
    pending = new("activity", ExecutionId.new().value, ACT)
    store.create(pending)
    running = new("activity", ExecutionId.new().value, ACT)
    locked(client, running)
    assert store.cancel(pending.id) == "cancelled"
    assert store.cancel(running.id) == "requested"
    assert [i for i in published(finished_ids) if i == pending.id] == [pending.id]
