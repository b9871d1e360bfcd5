"""Sharded queue, timer and index keys (store/shards.py): where keys land, the stored count, reads across shards."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from dolmen.platform.errors import ConfigError
from dolmen.platform.store.heartbeats import ProcessInfo
from dolmen.platform.ids import ExecutionId
from dolmen.platform.embedded import free_port
from dolmen.platform.scheduler import Scheduler, share
from dolmen.platform.store import outbox, shards as sharding
from dolmen.platform.store.connection import connect
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.leases import Leases
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.shards import COUNT_KEY, Shards
from tests.support import indexes
from tests.support.cli import run_platform

ACT = "t:s/i@1.0.0.act"


@pytest.mark.parametrize("count", [1, 2, 3, 6, 16, 64])
def test_shard_s_of_n_lands_in_the_s_th_of_n_equal_slot_ranges(count: int) -> None:
    shards = Shards(count)
    for shard in range(count):
        slot = key_slot(shards.key(shard, "timers").encode())
        assert slot == key_slot(shards.queue_in(shard, ACT).encode())  # a shard's keys share its slot
        assert shard * 16384 // count <= slot < (shard + 1) * 16384 // count


def test_executions_spread_evenly_and_always_to_the_same_shard() -> None:
    shards = Shards(6)
    ids = [ExecutionId.new().value for _ in range(6000)]
    per_shard = [0] * 6
    for execution_id in ids:
        per_shard[shards.of(execution_id)] += 1
    assert all(850 <= n <= 1150 for n in per_shard), per_shard  # 1000 each, ±15%
    assert all(shards.of(e) == Shards(6).of(e) for e in ids[:100])
    assert Shards.queue_ffqn(shards.queue(ACT, ids[0])) == ACT


def test_a_count_out_of_range_is_refused_naming_the_range() -> None:
    with pytest.raises(ConfigError, match="between 1 and 1024"):
        Shards(0)


def test_the_count_is_set_at_first_use_and_a_different_one_later_is_refused(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOLMEN_SHARDS", "4")
    assert sharding.load(client) == Shards(4)
    assert client.get(COUNT_KEY) == b"4"
    monkeypatch.delenv("DOLMEN_SHARDS")
    assert sharding.load(client) == Shards(4)  # whatever this process would have chosen
    monkeypatch.setenv("DOLMEN_SHARDS", "2")
    with pytest.raises(ConfigError) as refused:
        sharding.load(client)
    assert "set up with 4 shards" in str(refused.value) and "unset DOLMEN_SHARDS or set it to 4" in str(refused.value)


def test_the_default_is_one_shard_on_one_server_and_two_per_master_on_a_cluster() -> None:
    assert sharding.default_count(1) == 1 and sharding.default_count(3) == 6


def four_shards(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Scripts:
    monkeypatch.setenv("DOLMEN_SHARDS", "4")
    scripts = Scripts(client)
    assert scripts.shards.count == 4
    return scripts


def test_runners_read_every_shard_and_listings_merge_them_newest_first(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = four_shards(client, monkeypatch)
    store = ExecutionStore(client, scripts)
    created = []
    for i in range(40):
        new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[i])
        store.create(new)
        created.append(new.id)
    assert {scripts.shards.of(e) for e in created} == {0, 1, 2, 3}
    assert all(indexes.queue_len(client, ACT) and client.xlen(q) for q in scripts.shards.queues(ACT))

    leases = Leases(client, scripts)
    read = leases.read("r1", [ACT], 100, 100)
    assert sorted(entry.execution_id for entry in read) == sorted(created)
    leases.ack(read)
    assert indexes.queue_len(client, ACT) == 0  # each entry acked in its own shard

    listed, cursor = store.list(limit=15)
    newest = sorted(created, key=lambda e: (store.get(e).created_at, e), reverse=True)
    assert [s.id for s in listed] == newest[:15]
    more, _ = store.list(limit=100, cursor=cursor)
    assert [s.id for s in listed + more] == newest  # the second page continues where the first stopped
    assert {s.id for s in store.live_states()} == set(created)


def test_schedulers_fire_the_timers_of_their_shares_only(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = four_shards(client, monkeypatch)
    ids = [ExecutionId.new().value for _ in range(20)]
    pipe = scripts.pipeline()
    for execution_id in ids:
        timer = outbox.timer_msg(now_ms() - 1, outbox.timer_member("enqueue", ffqn=ACT, id=execution_id))
        outbox.queue_all(pipe, [outbox.Effects("E_X", [timer])])
    pipe.execute()
    first, second = Scheduler(client, scripts), Scheduler(client, scripts)
    first.shards, second.shards = [0, 2], [1, 3]
    assert first.fire_due() == sum(scripts.shards.of(e) in (0, 2) for e in ids)
    assert sorted(indexes.queued(client, ACT)) == sorted(e for e in ids if scripts.shards.of(e) in (0, 2))
    assert second.fire_due() == sum(scripts.shards.of(e) in (1, 3) for e in ids)
    assert sorted(indexes.queued(client, ACT)) == sorted(ids) and indexes.zcard(client, "timers") == 0


def scheduler(name: str, *, ticked_ago_s: float = 0.0, seen_ago_s: float = 0.0) -> ProcessInfo:
    now = time.time()
    return ProcessInfo(name, "scheduler", 1, "h", now - 60, now - seen_ago_s, {"ticked_at": now - ticked_ago_s})


def test_ticking_schedulers_split_the_shards_between_them() -> None:
    shards, now = Shards(6), time.time()
    fleet = [scheduler("scheduler:a"), scheduler("scheduler:b"), scheduler("scheduler:c")]
    shares = [share(fleet, p.id, shards, now) for p in fleet]
    assert shares == [[0, 3], [1, 4], [2, 5]]
    # A stalled loop (its heartbeat thread still beats) or a silent process leaves its shards to the others.
    stalled = [scheduler("scheduler:a"), scheduler("scheduler:b", ticked_ago_s=30), scheduler("scheduler:c", seen_ago_s=60)]
    assert share(stalled, "scheduler:a", shards, now) == list(range(6))
    # One the others cannot see yet takes everything meanwhile: twice is safe, never is not.
    assert share(fleet, "scheduler:new", shards, now) == list(range(6))


def test_a_count_over_the_limit_is_refused_before_anything_is_stored(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOLMEN_SHARDS", "2000")
    with pytest.raises(ConfigError, match=r"DOLMEN_SHARDS='2000' is not valid: .* from 0 to 1024"):
        sharding.load(client)
    assert client.get(COUNT_KEY) is None


def test_an_invalid_stored_count_says_how_to_start_over(client: redis.Redis) -> None:
    client.set(COUNT_KEY, 2000)  # as an earlier Dolmen that did not check it could have stored
    with pytest.raises(ConfigError, match=r"invalid shard count, 2000 .*DEL dolmen:shards"):
        sharding.load(client)


def test_status_reports_and_up_and_every_service_refuse_a_shard_count_other_than_the_stores(redis_url: str, tmp_path: Path) -> None:
    client = connect(redis_url)
    try:
        client.set(COUNT_KEY, 4)
    finally:
        client.close()
    mismatch = {"DOLMEN_SHARDS": "3"}
    status = json.loads(run_platform("--redis", redis_url, "status", "--json", env=mismatch).stdout)
    assert status["redis"]["shards"] == 4
    assert any("DOLMEN_SHARDS=3 here, but the store has 4 shards" in p for p in status["problems"])
    up = run_platform("--redis", redis_url, "--data-dir", str(tmp_path), "up", "--port", str(free_port()), env=mismatch)
    assert up.returncode == 2 and "this store was set up with 4 shards" in up.stderr, up.stderr
    for service in (["runner"], ["scheduler"], ["gateway", "--port", str(free_port())]):
        refused = run_platform("--redis", redis_url, "--data-dir", str(tmp_path), *service, env=mismatch)
        assert refused.returncode == 2 and "this store was set up with 4 shards" in refused.stderr, (service, refused.stderr)
