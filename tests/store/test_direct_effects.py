"""Write scripts that carry out their own effects on one server (lua/_prelude.lua `emit`, `Scripts.direct`).

The outbox protocol (the write puts messages in its tree's outbox, the
writer delivers them) is what a cluster needs; on one server with one shard
a script may touch any key, so it queues, times and indexes itself. These
tests hold the two to the same result, message kind by message kind, and
check what the writer relies on: what the script carries out is exactly
what `outbox.applies_directly` says, and a message it could not carry out
is in the outbox with a dirty mark, for the sweep.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from dolmen.platform.errors import ConfigError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys, outbox
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.shards import Shards
from tests.support import indexes

ACT = "t:p/i@1.0.0.act"
WF = "t:p/i@1.0.0.wf"
# A ms timestamp past what Redis's %.14g number format writes exactly (year 9999).
LATE = 253_402_300_799_999


@pytest.fixture(autouse=True)
def one_server(client: Any) -> None:
    if isinstance(client, redis.RedisCluster):
        pytest.skip("scripts carry out their own effects on one server only")


def messages(root: ExecutionId) -> list[str]:
    """One message of every kind a write script is given, with the fields that change what it does."""
    a, b, c = (root.child(i).value for i in (1, 2, 3))
    return [
        outbox.enqueue_msg(ACT, a),
        outbox.enqueue_msg(ACT, b, "high"),
        outbox.index_msg(a, 1_700_000_000_001, tags={"customer": "ü-42", "env": "prod"}),
        outbox.index_msg(b, 1_700_000_000_002, finished=True),
        outbox.index_msg(c, LATE, replaces=a),
        outbox.expire_msg(root.value, LATE),
        outbox.timer_msg(LATE, outbox.enqueue_member(ACT, a, "low")),
        outbox.timer_msg(1_700_000_000_003, outbox.delay_member(root.value, WF, "d-1", None)),
        outbox.chain_msg(root.value, 1, c, 60_000),
        outbox.create_msg(f"{ExecutionId.new().value}", json.dumps({"ffqn": ACT}), ["ffqn", ACT], [], wid="w1"),
    ]


def create_with(scripts: Scripts, root: ExecutionId, sent: list[str]) -> None:
    """The `create` script of `root`, given `sent` as its outbox messages (any write script emits them alike)."""
    fields = ["id", root.value, "ffqn", WF, "kind", "workflow", "status", "pending", "version", "0"]
    reply = scripts(
        "create",
        [keys.state(root.value), keys.log(root.value), keys.outbox(root.value)],
        ["w-create", json.dumps({"ffqn": WF}), 1_700_000_000_000, len(sent), *sent, *fields],
    )
    assert reply == [b"created"]


def cross_tree(client: redis.Redis) -> dict[str, Any]:
    """Every shard key and the priorities set, with their content (queue entries without their stream ids)."""
    out: dict[str, Any] = {}
    for raw in sorted(client.scan_iter(match="dolmen:{s0}:*", count=1000)):  # type: ignore[type-var]
        key = raw.decode()
        kind = client.type(key).decode()  # type: ignore[union-attr]
        if kind == "stream":
            out[key] = [fields for _, fields in client.xrange(key)]  # type: ignore[union-attr]
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
    out[keys.PRIORITIES] = client.smembers(keys.PRIORITIES)
    return out


def test_both_kinds_of_scripts_leave_the_same_queues_timers_and_indexes(client: redis.Redis) -> None:
    """Every message kind: carried out by the script, or through the outbox and its delivery, to the same keys."""
    root = ExecutionId.new()
    sent = messages(root)
    through_outbox = Scripts(client, shards=Shards(1), direct=False)
    create_with(through_outbox, root, sent)
    assert client.llen(keys.outbox(root.value)) == len(sent)
    outbox.flush(through_outbox, [root.value])
    assert client.llen(keys.outbox(root.value)) == 0
    expected = cross_tree(client)
    client.flushdb()

    direct = Scripts(client, shards=Shards(1), direct=True)
    create_with(direct, root, sent)
    left = [m.decode() for m in client.lrange(keys.outbox(root.value), 0, -1)]  # type: ignore[union-attr]
    # What the writer delivers is what the script left: the chain head and the creation elsewhere.
    assert left == outbox.left_in_outbox(True, sent) == sent[-2:]
    assert indexes.zcard(client, "dirty") == 0
    outbox.flush(direct, [root.value])
    assert cross_tree(client) == expected
    assert indexes.zscore(client, "expiry", root.value) == LATE  # exact, not rounded to 14 digits


def test_a_message_the_script_cannot_carry_out_goes_to_the_outbox_with_a_dirty_mark(client: redis.Redis) -> None:
    """A refused effect (here a queue key of the wrong type) leaves the message for the sweep, which delivers it once it can."""
    scripts = Scripts(client, shards=Shards(1), direct=True)
    root = ExecutionId.new()
    queue = Shards(1).queue(ACT, root.child(1).value)
    client.set(queue, "not a stream")
    enqueue = outbox.enqueue_msg(ACT, root.child(1).value)
    index = outbox.index_msg(root.child(1).value, 1_700_000_000_001)
    create_with(scripts, root, [enqueue, index])
    assert [m.decode() for m in client.lrange(keys.outbox(root.value), 0, -1)] == [enqueue]  # type: ignore[union-attr]
    marks = [m.decode() for m in indexes.zmembers(client, "dirty")]  # type: ignore[union-attr]
    assert len(marks) == 1 and outbox.root_of_mark(marks[0]) == root.value
    assert indexes.zscore(client, "executions", root.child(1).value) == 1_700_000_000_001  # the other one went through
    client.delete(queue)
    assert outbox.sweep(scripts, older_than_ms=0) == 1
    assert indexes.queued(client, ACT) == [root.child(1).value]
    assert client.llen(keys.outbox(root.value)) == 0 and indexes.zcard(client, "dirty") == 0


def test_a_message_of_no_known_shape_goes_to_the_outbox_as_it_is(client: redis.Redis) -> None:
    """Anything but JSON of a known kind is the writer's to deliver (it marked the tree dirty for it)."""
    scripts = Scripts(client, shards=Shards(1), direct=True)
    root = ExecutionId.new()
    odd = ["not json", '{"op": "enqueue"}', '{"op": "timer", "at": 5, "m": {"id": "E_X"}}', "[1, 2]"]
    create_with(scripts, root, odd)
    assert [m.decode() for m in client.lrange(keys.outbox(root.value), 0, -1)] == odd  # type: ignore[union-attr]
    # '{"op": "enqueue"}' looks like one the script carries out, so its writer would not deliver it:
    # the script marks the tree dirty for it, and the sweep finds it.
    assert outbox.left_in_outbox(True, odd) == [odd[0], odd[2], odd[3]]
    assert indexes.zcard(client, "dirty") == 1


def test_only_one_server_with_one_shard_gets_scripts_that_carry_out_their_effects(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Scripts(client, shards=Shards(1)).direct
    assert not Scripts(client, shards=Shards(3)).direct  # shard keys a script cannot name
    assert Scripts(client, shards=Shards(1), direct=True).sha("commit") != Scripts(client, direct=False).sha("commit")
    monkeypatch.setenv("DOLMEN_DIRECT_EFFECTS", "0")
    assert not Scripts(client, shards=Shards(1)).direct
    monkeypatch.setenv("DOLMEN_DIRECT_EFFECTS", "yes")
    with pytest.raises(ConfigError, match=r"DOLMEN_DIRECT_EFFECTS='yes' is not valid: it is the switch .* \(1\) or .* \(0\), a whole number from 0 to 1"):
        _ = Scripts(client, shards=Shards(1)).direct


def test_writers_mark_a_tree_dirty_only_for_messages_left_in_the_outbox() -> None:
    root = ExecutionId.new()
    direct = outbox.enqueue_msg(ACT, root.child(1).value)
    elsewhere = outbox.chain_msg(root.value, 1, root.child(1).value, 1000)
    assert not outbox.needs_mark(True, [direct, ""])
    assert outbox.needs_mark(True, [direct, elsewhere])
    assert outbox.needs_mark(False, [direct])
    assert not outbox.needs_mark(False, ["", ""])
