"""permit.lua and the limit gate (store/limits.py) against a real Valkey: counts, rate spacing, expiry, re-sends, requeues."""

from __future__ import annotations

import pytest
import redis

from dolmen.platform.model import FunctionLimits
from dolmen.platform.store import limits as limits_module
from dolmen.platform.store import keys
from dolmen.platform.store.lease_values import QueueEntry
from dolmen.platform.store.limits import FULL_RECHECK_MS, LimitGate, PermitRequest, Permits, permit_of
from dolmen.platform.store.scripts import Scripts

F = "testing:act/basic@1.0.0.nap"
NOW = 1_800_000_000_000


def _request(n: int, limits: FunctionLimits, owner: str = "runner-a") -> PermitRequest:
    return PermitRequest(F, f"E_{n}", owner, limits)


def test_at_most_max_running_permits_and_a_slot_frees_when_one_is_given_back(client: redis.Redis) -> None:
    """Two of three are admitted; the third is told to look again within FULL_RECHECK_MS; a release makes room."""
    permits = Permits(Scripts(client))
    two = FunctionLimits(max_running=2)
    answers = permits.admit([_request(i, two) for i in range(3)], NOW, 10_000)
    assert [a.granted for a in answers] == [True, True, False]
    assert answers[2].reason == "full" and answers[2].until == NOW + FULL_RECHECK_MS
    assert permits.running(F, NOW) == 2
    permits.release([permit_of(_request(0, two))])
    assert [a.granted for a in permits.admit([_request(2, two)], NOW, 10_000)] == [True]
    assert permits.running(F, NOW) == 2


def test_a_re_sent_admission_is_not_counted_twice(client: redis.Redis) -> None:
    """The same execution and owner asking again (a lost reply) keeps its one permit, renewed."""
    permits = Permits(Scripts(client))
    one = FunctionLimits(max_running=1)
    assert permits.admit([_request(0, one)], NOW, 1_000)[0].granted
    assert permits.admit([_request(0, one)], NOW + 500, 1_000)[0].granted
    assert client.zscore(keys.limit_running(F), "E_0|runner-a") == NOW + 1_500
    assert permits.running(F, NOW + 500) == 1
    # Another owner of the same execution (a takeover) is another permit.
    assert not permits.admit([_request(0, one, owner="runner-b")], NOW + 500, 1_000)[0].granted


def test_the_permit_of_a_holder_that_died_ends_with_its_lease(client: redis.Redis) -> None:
    """Never given back nor renewed, a permit stops counting at its end; renewal moves that end."""
    permits = Permits(Scripts(client))
    one = FunctionLimits(max_running=1)
    assert permits.admit([_request(0, one)], NOW, 1_000)[0].granted
    refused = permits.admit([_request(1, one)], NOW + 999, 1_000)[0]
    assert not refused.granted and refused.until == NOW + 1_000  # its end comes before the recheck
    assert permits.admit([_request(1, one)], NOW + 1_001, 1_000)[0].granted
    assert client.zrange(keys.limit_running(F), 0, -1) == [b"E_1|runner-a"]
    permits.renew([permit_of(_request(1, one))], NOW + 5_000)
    assert not permits.admit([_request(2, one)], NOW + 4_000, 1_000)[0].granted
    # A permit dropped meanwhile is not brought back by a late renewal (ZADD XX).
    permits.renew([permit_of(_request(0, one))], NOW + 9_000)
    assert client.zscore(keys.limit_running(F), "E_0|runner-a") is None


def test_starts_are_spaced_one_over_the_rate_apart(client: redis.Redis) -> None:
    """At 5 starts/s, one start per 200 ms: refused ones are told when the next start is due."""
    permits = Permits(Scripts(client))
    five = FunctionLimits(starts_per_second=5)
    assert five.interval_ms == 200
    assert [a.granted for a in permits.admit([_request(i, five) for i in range(3)], NOW, 1_000)] == [True, False, False]
    later = permits.admit([_request(1, five)], NOW + 150, 1_000)[0]
    assert (later.granted, later.reason, later.until) == (False, "rate", NOW + 200)
    assert permits.admit([_request(1, five)], NOW + 200, 1_000)[0].granted
    assert not permits.admit([_request(2, five)], NOW + 399, 1_000)[0].granted
    assert permits.admit([_request(2, five)], NOW + 400, 1_000)[0].granted
    # A rate limit alone holds no permits: nothing to renew or give back.
    assert client.exists(keys.limit_running(F)) == 0 and not permit_of(_request(2, five)).counted


def test_both_limits_a_full_function_spends_no_start(client: redis.Redis) -> None:
    """With both limits, an admission refused as full does not move the next start."""
    permits = Permits(Scripts(client))
    both = FunctionLimits(max_running=1, starts_per_second=10)
    assert permits.admit([_request(0, both)], NOW, 1_000)[0].granted
    assert permits.admit([_request(1, both)], NOW + 100, 1_000)[0].reason == "full"
    permits.release([permit_of(_request(0, both))])
    assert permits.admit([_request(1, both)], NOW + 100, 1_000)[0].granted


def test_the_gate_sends_refused_entries_back_to_the_end_of_their_queue(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlimited entries pass; a limited function's refused ones are re-queued and held back until due."""
    # The gate's clock stands still: a refusal holds a function back only FULL_RECHECK_MS (100 ms), which a
    # loaded machine spent between `admit` and `held_back` on a cluster run.
    frozen = limits_module.now_ms()
    monkeypatch.setattr(limits_module, "now_ms", lambda: frozen)
    scripts = Scripts(client)
    gate = LimitGate(scripts, lambda: {F: FunctionLimits(max_running=1)})
    stream = scripts.shards.queue(F, "E_1")
    # A function's queue is sharded by execution id (on a cluster, over several masters): the second
    # execution must share E_1's stream for one read to see both.
    second = next(f"E_{n}" for n in range(2, 10_000) if scripts.shards.queue(F, f"E_{n}") == stream)
    client.xgroup_create(stream, keys.QUEUE_GROUP, id="0", mkstream=True)
    for execution_id in ("E_1", second):
        client.xadd(scripts.shards.queue(F, execution_id), {"id": execution_id})
    read = client.xreadgroup(keys.QUEUE_GROUP, "r", {stream: ">"}, count=10)
    entries = [QueueEntry(F, sid.decode(), fields[b"id"].decode()) for sid, fields in read[0][1]]  # type: ignore[index]
    other = QueueEntry("testing:act/basic@1.0.0.double", "1-1", "E_3")
    admitted, permits = gate.admit([*entries, other], "r", 10_000)
    assert [e.execution_id for e in admitted] == ["E_1", "E_3"] and list(permits) == ["E_1"]
    assert gate.held_back() == frozenset({F}) and 0 < gate.wait_ms(1_000) <= FULL_RECHECK_MS
    left = client.xrange(stream)
    assert [fields[b"id"] for _, fields in left] == [b"E_1", second.encode()]  # the second again, at the end
    assert left[1][0].decode() != entries[1].entry_id
    assert client.xpending(stream, keys.QUEUE_GROUP)["pending"] == 1  # only E_1's entry is still held
    assert gate.limited(F) and not gate.limited(other.ffqn)
