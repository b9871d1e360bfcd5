"""Retention on a real Valkey: a finished tree goes whole once its retention passed; an unfinished one never does.

Trees are built here through the same scripts runners use (create, lock,
commit with children, finish), and the sweep is stepped with a chosen "now",
so nothing waits for the wall clock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import redis

from dolmen.platform.errors import UsageError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.purge import PurgeFilter, purge_trees
from dolmen.platform.store.records import Failure, Outcome
from dolmen.platform.store.retention import DEFAULT_RETENTION_MS, RetentionSweep, RetentionView, read_retention_view, root_fields
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.trees import read_trees, remove_trees
from tests.support import indexes

WF = "t:p/flows@1.0.0.run"
ACT = "t:p/acts@1.0.0.work"
OTHER = "t:p/acts@1.0.0.other"


@dataclass
class Built:
    """A tree made by `build`: its ids, and the leases of those not finished yet."""

    root: str
    ids: list[str]
    leases: dict[str, Lease] = field(default_factory=dict)


def tree_keys(client: redis.Redis, root: str) -> list[str]:
    """Every key with the root's hash tag (a SCAN is fine in a test)."""
    return sorted(k.decode() for k in client.scan_iter(match=f"*{{{root}}}*", count=1000))  # type: ignore[union-attr]


def indexed(client: redis.Redis, kind: str, ids: list[str]) -> list[str]:
    return [i for i in ids if indexes.zscore(client, kind, i) is not None]


def build(
    client: redis.Redis,
    *,
    retention_ms: int | None = None,
    key: str | None = None,
    ffqn: str = WF,
    leave_running: str | None = None,
    finish_root: bool = True,
    outcome: Outcome | None = None,
) -> Built:
    """A workflow root with two children, one a workflow with a child of its own: root, .1, .1.1, .2.

    `leave_running` names one of them (".1.1") left locked and unfinished.
    """
    store, leases = ExecutionStore(client), Leases(client)
    root = ExecutionId.new().value
    if key is not None:
        assert store.claim_idempotency_key(key, root) == root
    store.create(NewExecution(id=root, ffqn=ffqn, kind="workflow", digest="sha256:w", params=[], state_extra=root_fields(retention_ms, key)))
    built = Built(root, [root])

    def lock(execution_id: str) -> Lease:
        lease = leases.lock(execution_id, "test", 60_000)
        assert isinstance(lease, Lease), lease
        return lease

    def submit(parent: Lease, children: list[tuple[str, str]]) -> None:
        events = [("child_submitted", {"join_set": None, "child_id": c, "ffqn": f, "params": []}, now_ms()) for c, f in children]
        creates = [
            NewExecution(id=c, ffqn=f, kind="workflow" if f == WF else "activity", digest="sha256:c", params=[],
                         parent=parent.id, state_extra={"js": "", "parent_ffqn": parent.state.ffqn})
            for c, f in children
        ]  # fmt: skip
        leases.commit(parent, events, creates, last_seen="0-0", first_index=0)
        built.ids.extend(c for c, _ in children)

    root_lease = lock(root)
    submit(root_lease, [(f"{root}.1", WF), (f"{root}.2", ACT)])
    child = lock(f"{root}.1")
    submit(child, [(f"{root}.1.1", ACT)])
    left = f"{root}.{leave_running}" if leave_running else None
    for execution_id, lease in ((f"{root}.1.1", None), (f"{root}.1", child), (f"{root}.2", None)):
        lease = lease or lock(execution_id)
        if execution_id == left:
            built.leases[execution_id] = lease
            continue
        leases.finish(lease, Outcome(value=1))
    if finish_root:
        leases.finish(root_lease, outcome or Outcome(value=42))
    else:
        built.leases[root] = root_lease
    return built


@pytest.fixture
def scripts(client: redis.Redis) -> Scripts:
    return Scripts(client)


def expiry(client: redis.Redis, root: str) -> int | None:
    score = indexes.zscore(client, "expiry", root)
    return None if score is None else int(score)


def test_a_finished_tree_goes_whole_once_its_retention_passed(client: redis.Redis, scripts: Scripts) -> None:
    """Past its retention, every key of the tree, its index entries, its expiry entry and its idempotency key are gone."""
    built = build(client, retention_ms=60_000, key="order-17")
    other = build(client, retention_ms=120_000)
    finished_at = int(client.hget(keys.state(built.root), "finished_at"))  # type: ignore[arg-type]
    assert expiry(client, built.root) == finished_at + 60_000
    written = tree_keys(client, built.root)
    assert {keys.state(i) for i in built.ids} | {keys.log(i) for i in built.ids} <= set(written)
    assert indexed(client, "executions", built.ids) == built.ids
    others = tree_keys(client, other.root)
    sweep = RetentionSweep(scripts)
    assert sweep.step(finished_at + 59_999) == 0
    assert tree_keys(client, built.root) == written, "removed before its retention passed"
    assert sweep.step(finished_at + 60_000) == 1
    assert tree_keys(client, built.root) == []
    assert indexed(client, "executions", built.ids) == [] and indexed(client, "active", built.ids) == []
    assert expiry(client, built.root) is None
    assert client.get(keys.idempotency("order-17")) is None
    assert indexes.zscore(client, "dirty", built.root) is None
    assert ExecutionStore(client).get(built.root) is None
    assert tree_keys(client, other.root) == others and indexed(client, "executions", other.ids) == other.ids


def test_retention_defaults_to_seven_days(client: redis.Redis) -> None:
    """A root that records no retention expires 7 days after it finished."""
    built = build(client)
    finished_at = int(client.hget(keys.state(built.root), "finished_at"))  # type: ignore[arg-type]
    assert DEFAULT_RETENTION_MS == 7 * 86_400_000
    assert expiry(client, built.root) == finished_at + DEFAULT_RETENTION_MS


def test_an_unfinished_tree_is_never_removed(client: redis.Redis, scripts: Scripts) -> None:
    """A root not finished stays, even listed as due by mistake; a finished root waits for a descendant still running."""
    running = build(client, retention_ms=1000, finish_root=False)
    indexes.zadd(client, "expiry", {running.root: 1})  # listed by mistake
    waiting = build(client, retention_ms=1000, leave_running="1.1")
    finished_at = int(client.hget(keys.state(waiting.root), "finished_at"))  # type: ignore[arg-type]
    running_keys, waiting_keys = tree_keys(client, running.root), tree_keys(client, waiting.root)
    sweep = RetentionSweep(scripts)
    far = finished_at + 10 * 86_400_000
    assert sweep.step(far) == 0
    assert tree_keys(client, running.root) == running_keys and tree_keys(client, waiting.root) == waiting_keys
    # Looked at again later, not at every step: within a minute.
    assert far < expiry(client, waiting.root) <= far + 60_000  # type: ignore[operator]
    # Once the descendant finished, the tree goes at the next look.
    Leases(client).finish(waiting.leases[f"{waiting.root}.1.1"], Outcome(value=1))
    assert sweep.step(far) == 0, "not due yet"
    assert sweep.step(far + 60_000) == 1
    assert tree_keys(client, waiting.root) == []
    assert tree_keys(client, running.root) == running_keys


def test_the_removal_script_refuses_a_tree_that_changed(client: redis.Redis, scripts: Scripts) -> None:
    """A tree read while a member ran is refused whole when removed: nothing is deleted."""
    built = build(client, retention_ms=1000, leave_running="2")
    [tree] = read_trees(client, [built.root])
    assert tree.unfinished == [f"{built.root}.2"]
    before = tree_keys(client, built.root)
    assert remove_trees(scripts, [tree]) == {built.root: "unfinished"}
    assert tree_keys(client, built.root) == before
    assert client.get(keys.purged(built.root)) is None


def test_a_cancelled_pending_root_starts_its_retention(client: redis.Redis, scripts: Scripts) -> None:
    """Cancelling a pending activity finishes it at once, and lists it for removal like any finished root."""
    store = ExecutionStore(client)
    root = ExecutionId.new().value
    store.create(NewExecution(id=root, ffqn=ACT, kind="activity", digest="sha256:a", params=[], state_extra=root_fields(5000)))
    assert store.cancel(root) == "cancelled"
    finished_at = int(client.hget(keys.state(root), "finished_at"))  # type: ignore[arg-type]
    assert expiry(client, root) == finished_at + 5000
    assert RetentionSweep(scripts).step(finished_at + 5000) == 1
    assert tree_keys(client, root) == [] and indexes.zscore(client, "executions", root) is None


def test_an_interrupted_removal_is_finished_from_its_tombstone(client: redis.Redis, scripts: Scripts) -> None:
    """A remover that died between the tree's script and the index cleaning leaves a tombstone the next sweep finishes."""
    built = build(client, retention_ms=1000, key="k-interrupted")
    [tree] = read_trees(client, [built.root])
    script_keys = [keys.outbox(built.root), keys.purged(built.root)]
    for member in tree.members:
        script_keys += [keys.state(member.id), keys.log(member.id), keys.done(member.id)]
    tombstone = json.dumps({"members": built.ids, "idem": "k-interrupted"})
    reply = scripts("remove_tree", script_keys, [tombstone, 60, *(m.log_length for m in tree.members)])
    assert reply[0] == b"removed"
    assert tree_keys(client, built.root) == [keys.purged(built.root)]
    assert indexed(client, "executions", built.ids) == built.ids  # not cleaned yet
    finished_at = expiry(client, built.root)
    assert RetentionSweep(scripts).step(finished_at + 1) == 0  # type: ignore[operator]
    assert tree_keys(client, built.root) == []
    assert indexed(client, "executions", built.ids) == [] and expiry(client, built.root) is None
    assert client.get(keys.idempotency("k-interrupted")) is None


def test_an_idempotency_key_bound_anew_is_kept(client: redis.Redis, scripts: Scripts) -> None:
    """A key that expired and now names another execution is not removed with the old tree."""
    built = build(client, retention_ms=1000, key="k-reused")
    client.set(keys.idempotency("k-reused"), "E_SOMEONEELSE")
    assert RetentionSweep(scripts).step(now_ms() + 2000) == 1
    assert client.get(keys.idempotency("k-reused")) == b"E_SOMEONEELSE"
    assert tree_keys(client, built.root) == []


def test_the_sweep_is_bounded_and_says_when_more_is_due(client: redis.Redis, scripts: Scripts) -> None:
    """One step removes at most `batch` trees and reports a backlog; the next steps go on."""
    store = ExecutionStore(client)
    roots = []
    for _ in range(5):
        root = ExecutionId.new().value
        store.create(NewExecution(id=root, ffqn=ACT, kind="activity", digest="sha256:a", params=[], state_extra=root_fields(1)))
        store.cancel(root)
        roots.append(root)
    sweep = RetentionSweep(scripts, batch=2)
    later = now_ms() + 1000
    assert sweep.step(later) == 2 and sweep.backlog
    assert sweep.step(later) == 2 and sweep.backlog
    assert sweep.step(later) == 1 and not sweep.backlog
    assert indexes.zcard(client, "expiry") == 0 and indexes.zcard(client, "executions") == 0
    assert all(tree_keys(client, root) == [] for root in roots)


def test_purge_picks_trees_by_time_function_and_outcome(client: redis.Redis, scripts: Scripts) -> None:
    """Purge filters finished roots by finish time, ffqn and outcome; a dry run lists them and removes nothing."""
    ok = build(client, ffqn=WF)
    err = build(client, ffqn=WF, outcome=Outcome(value={"err": "no"}))
    failed = build(client, ffqn=WF, outcome=Outcome(failure=Failure("trap", "boom")))
    other = build(client, ffqn=OTHER)
    running = build(client, ffqn=WF, finish_root=False)
    waiting = build(client, ffqn=WF, leave_running="1.1")
    everything = [ok, err, failed, other, running, waiting]
    before = {b.root: tree_keys(client, b.root) for b in everything}

    dry = purge_trees(scripts, PurgeFilter(now_ms(), ffqn=WF), dry_run=True)
    assert dry.dry_run and {t.execution_id for t in dry.purged} == {ok.root, err.root, failed.root}
    assert all(t.executions == 4 for t in dry.purged)
    assert [k.execution_id for k in dry.kept] == [waiting.root] and "is not finished yet" in dry.kept[0].reason
    assert {b.root: tree_keys(client, b.root) for b in everything} == before, "a dry run removed something"

    assert purge_trees(scripts, PurgeFilter(ok_finished(client, ok.root) - 1)).purged == ()  # finished after TIME
    assert [t.execution_id for t in purge_trees(scripts, PurgeFilter(now_ms(), status="err")).purged] == [err.root]
    purged = purge_trees(scripts, PurgeFilter(now_ms(), ffqn=WF, status="failed")).purged
    assert [(t.execution_id, t.outcome) for t in purged] == [(failed.root, "trap")]
    assert [t.execution_id for t in purge_trees(scripts, PurgeFilter(now_ms(), status="ok", ffqn=WF)).purged] == [ok.root]
    for gone in (ok, err, failed):
        assert tree_keys(client, gone.root) == [] and indexed(client, "executions", gone.ids) == []
        assert expiry(client, gone.root) is None
    rest = purge_trees(scripts, PurgeFilter(now_ms()))
    assert [t.execution_id for t in rest.purged] == [other.root]
    assert [k.execution_id for k in rest.kept] == [waiting.root]
    assert tree_keys(client, running.root) == before[running.root]
    assert tree_keys(client, waiting.root) == before[waiting.root]


def ok_finished(client: redis.Redis, root: str) -> int:
    return int(client.hget(keys.state(root), "finished_at"))  # type: ignore[arg-type]


def test_purge_refuses_a_status_that_is_not_finished() -> None:
    """Only finished trees are purged: asking for running ones names the choices."""
    with pytest.raises(UsageError, match="only finished executions are purged, not running ones"):
        PurgeFilter(0, status="running")


def test_purge_pages_through_the_index_without_missing_or_repeating(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """The purge's walk of the executions index pages by score, also across more equal scores than a page holds."""
    from dolmen.platform.store import purge

    monkeypatch.setattr(purge, "_PAGE", 3)
    scores = {f"E_{i:02d}": 1000 + i // 5 for i in range(17)}
    key = "dolmen:{s0}:executions"  # one shard's index
    client.zadd(key, {**scores, "E_00.1": 1000, "E_99": 5000})
    walked = [root for page in purge._pages(client, key, 2000) for root in page]
    assert walked == sorted(scores, key=lambda r: (scores[r], r))


def test_what_retention_keeps_is_counted_for_platform_status(client: redis.Redis) -> None:
    """The trees listed for removal, and when the first one goes, in one line for `platform status`."""
    indexes.delete(client, "expiry")
    assert read_retention_view(client) == RetentionView(0, None)
    assert RetentionView(0, None).describe(0) == "0 finished trees kept (retention 7d unless the deployment sets one)"
    indexes.zadd(client, "expiry", {"E_A": 10_000_000, "E_B": 5_000_000})
    view = read_retention_view(client)
    assert view == RetentionView(2, 5_000_000)
    assert view.describe(5_000_000 - 7_200_000 + 1) == "2 finished trees kept (retention 7d unless the deployment sets one); the next is removed in 2h"
    assert view.describe(6_000_000).endswith("; the next is due now")
    assert RetentionView(1, None, 90_000).describe(0) == "1 finished tree kept (retention 1m unless the deployment sets one)"
    indexes.delete(client, "expiry")
