"""Tag indexes on a real Valkey: listing by tag across shards, and removal with the tree (purge, retention, tombstones).

The store runs with three shards, so every listing below merges shards.
"""

from __future__ import annotations

import pytest
import redis

from dolmen.platform.errors import ConflictError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys, trees
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.listing import Cursor
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.purge import PurgeFilter, purge_trees
from dolmen.platform.store.records import Outcome
from dolmen.platform.store.retention import RetentionSweep, root_fields
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.shards import tag_kind
from dolmen.platform.store.trees import clean_gone
from tests.support import indexes

ACT = "t:tags/acts@1.0.0.work"
WF = "t:tags/flows@1.0.0.run"


@pytest.fixture
def scripts(three_shard_scripts: Scripts) -> Scripts:
    return three_shard_scripts


def tagged(store: ExecutionStore, tags: dict[str, str], i: int) -> str:
    new = NewExecution(id=ExecutionId.new().value, ffqn=ACT, kind="activity", digest="sha256:x", params=[i], tags=tags)
    store.create(new)
    return new.id


def newest_first(store: ExecutionStore, ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda e: (store.get(e).created_at, e), reverse=True)  # type: ignore[union-attr]


def tag_entries(client: redis.Redis, tag: str) -> int:
    return indexes.zcard(client, tag_kind(tag))


def test_listing_by_tags_merges_the_shards_newest_first_and_pages_through_them(client: redis.Redis, scripts: Scripts) -> None:
    """One tag, two tags (all must match), no match, and pages of 4 across three shards give what a filter of all would."""
    store = ExecutionStore(client, scripts)
    made: dict[str, dict[str, str]] = {}
    i = 0
    # At least 36, and on until the red ones are on every shard: a random id's shard left one out 1 run in 500.
    while i < 36 or {scripts.shards.of(e) for e, t in made.items() if t.get("color") == "red"} != {0, 1, 2}:
        tags = {"color": "red" if i % 2 else "blue", "size": "sml"[i % 3]} if i % 4 else {}
        made[tagged(store, tags, i)] = tags
        i += 1
    red = [e for e, t in made.items() if t.get("color") == "red"]
    red_small = [e for e, t in made.items() if t.get("color") == "red" and t.get("size") == "s"]

    listed, _ = store.list(tags=[("color", "red")], limit=100)
    assert [s.id for s in listed] == newest_first(store, red)
    assert all(s.tags == made[s.id] for s in listed)
    both, _ = store.list(tags=[("color", "red"), ("size", "s")], limit=100)
    assert [s.id for s in both] == newest_first(store, red_small) and red_small
    assert store.list(tags=[("color", "green")], limit=100) == ([], None)
    assert store.list(tags=[("color", "red"), ("size", "xl")], limit=100)[0] == []

    pages: list[str] = []
    cursor: Cursor | None = None
    while True:
        page, cursor = store.list(tags=[("color", "red")], limit=4, cursor=cursor)
        pages += [s.id for s in page]
        if len(page) < 4 or cursor is None:
            break
    assert pages == newest_first(store, red)
    # With other filters too: a status, and a tag index entry per shard of the execution.
    assert [s.id for s in store.list(tags=[("color", "red")], status="pending", limit=100)[0]] == newest_first(store, red)
    assert all(indexes.zscore(client, tag_kind("color=red"), e) is not None for e in red)


def test_tags_are_recorded_in_the_created_event_and_the_state(client: redis.Redis, scripts: Scripts) -> None:
    """The `created` event and the state hash hold the tags; an untagged execution has none."""
    store = ExecutionStore(client, scripts)
    execution_id = tagged(store, {"run": "r-1", "customer": "acme"}, 0)
    assert store.events(execution_id)[0].data["tags"] == {"customer": "acme", "run": "r-1"}
    state = store.require(execution_id)
    assert state.tags == {"customer": "acme", "run": "r-1"} and state.to_json()["tags"] == state.tags
    plain = tagged(store, {}, 1)
    assert "tags" not in store.events(plain)[0].data and "tags" not in store.require(plain).to_json()


def tagged_tree(client: redis.Redis, scripts: Scripts, tags: dict[str, str]) -> list[str]:
    """A finished workflow root with two finished activity children, all carrying `tags`; its ids."""
    store, leases = ExecutionStore(client, scripts), Leases(client, scripts)
    root = ExecutionId.new().value
    store.create(NewExecution(id=root, ffqn=WF, kind="workflow", digest="sha256:w", params=[], tags=tags,
                              state_extra=root_fields(1000)))  # fmt: skip
    lease = leases.lock(root, "test", 60_000)
    assert isinstance(lease, Lease)
    children = [f"{root}.1", f"{root}.2"]
    events = [("child_submitted", {"join_set": None, "child_id": c, "ffqn": ACT, "params": []}, now_ms()) for c in children]
    creates = [
        NewExecution(id=c, ffqn=ACT, kind="activity", digest="sha256:a", params=[], parent=root, tags=tags,
                     state_extra={"js": "", "parent_ffqn": WF})
        for c in children
    ]  # fmt: skip
    leases.commit(lease, events, creates, last_seen="0-0", first_index=0)
    for child in children:
        child_lease = leases.lock(child, "test", 60_000)
        assert isinstance(child_lease, Lease)
        leases.finish(child_lease, Outcome(value=1))
    leases.finish(lease, Outcome(value=2))
    return [root, *children]


def test_purge_removes_a_tree_from_its_tag_indexes(client: redis.Redis, scripts: Scripts) -> None:
    """Purged, every execution of the tree leaves each tag index; another tree with the same tag stays listed."""
    gone = tagged_tree(client, scripts, {"batch": "b1", "team": "x"})
    kept = tagged(ExecutionStore(client, scripts), {"batch": "b1"}, 0)
    assert tag_entries(client, "batch=b1") == 4 and tag_entries(client, "team=x") == 3
    report = purge_trees(scripts, PurgeFilter(before_ms=now_ms() + 1000, ffqn=WF))
    assert report.executions == 3
    assert tag_entries(client, "team=x") == 0
    assert [s.id for s in ExecutionStore(client, scripts).list(tags=[("batch", "b1")])[0]] == [kept]
    assert not any(client.exists(keys.state(e)) for e in gone)


def test_retention_removes_a_tree_from_its_tag_indexes(client: redis.Redis, scripts: Scripts) -> None:
    """The retention sweep, past the tree's retention, leaves no tag index entry behind."""
    tagged_tree(client, scripts, {"batch": "b2"})
    assert tag_entries(client, "batch=b2") == 3
    assert RetentionSweep(scripts).step(now_ms() + 10_000) == 1
    assert tag_entries(client, "batch=b2") == 0


def test_an_interrupted_removal_cleans_the_tag_indexes_from_its_tombstone(
    client: redis.Redis, scripts: Scripts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that dies after removing a tree's keys leaves a tombstone naming its tags: whoever finishes the clean-up removes them."""
    root, *_ = tagged_tree(client, scripts, {"batch": "b3", "env": "prod"})
    tree = trees.read_trees(client, [root])
    with monkeypatch.context() as patched:
        patched.setattr(trees, "clean", lambda scripts, tombstones: None)  # dies before cleaning the indexes
        assert trees.remove_trees(scripts, tree) == {root: "removed"}
    assert tag_entries(client, "batch=b3") == 3 and client.exists(keys.purged(root))
    clean_gone(scripts, [root])
    assert tag_entries(client, "batch=b3") == 0 and tag_entries(client, "env=prod") == 0
    assert not client.exists(keys.purged(root))


def test_creating_an_existing_execution_again_with_other_tags_is_a_conflict(client: redis.Redis, scripts: Scripts) -> None:
    """The same id with the same tags answers 'exists'; with other tags (or none) it is refused, naming the tags it has."""
    store = ExecutionStore(client, scripts)
    execution_id = tagged(store, {"run": "r-1"}, 0)

    def again(tags: dict[str, str]) -> bool:
        new = NewExecution(id=execution_id, ffqn=ACT, kind="activity", digest="sha256:x", params=[0], tags=tags)
        return store.create(new).created

    assert again({"run": "r-1"}) is False
    for other in ({"run": "r-2"}, {}):
        with pytest.raises(ConflictError, match=r'already exists with other tags \(\{"run": "r-1"\}\).*resend the tags'):
            again(other)
    assert store.require(execution_id).tags == {"run": "r-1"}
