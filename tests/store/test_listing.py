"""Listing executions (store/listing.py) on a real Valkey with three shards: pages older and newer from cursors that
stay put, executions created in the same millisecond, filters by outcome, the scan bound, and bad filters and cursors.
"""

from __future__ import annotations

import pytest
import redis

from dolmen.platform.errors import UsageError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.listing import Cursor, Found, ListFilter, Page, Position, newer_page, older_page
from dolmen.platform.store.records import ExecutionState, Failure, Outcome
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.surface import CLI, HTTP

ACT = "t:list/acts@1.0.0.work"
WF = "t:list/flows@1.0.0.run"


@pytest.fixture
def scripts(three_shard_scripts: Scripts) -> Scripts:
    return three_shard_scripts


@pytest.fixture
def store(client: redis.Redis, scripts: Scripts) -> ExecutionStore:
    return ExecutionStore(client, scripts)


def created(store: ExecutionStore, count: int, ffqn: str = ACT, **fields: object) -> list[str]:
    ids = []
    for i in range(count):
        new = NewExecution(id=ExecutionId.new().value, ffqn=ffqn, kind="activity", digest="sha256:x", params=[i], **fields)  # type: ignore[arg-type]
        store.create(new)
        ids.append(new.id)
    return ids


def index_order(client: redis.Redis, scripts: Scripts, kind: str = "executions") -> list[str]:
    """Every entry of the shards of `kind`, as one sorted set of them all would list them newest first."""
    rows = [(score, raw.decode()) for key in scripts.shards.every(kind) for raw, score in client.zrange(key, 0, -1, withscores=True)]
    return [member for _, member in sorted(rows, reverse=True)]


def ids(page: Page) -> list[str]:
    return [s.id for s in page.states]


def finish(client: redis.Redis, scripts: Scripts, execution_id: str, outcome: Outcome) -> None:
    leases = Leases(client, scripts)
    lease = leases.lock(execution_id, "test", 30_000)
    assert isinstance(lease, Lease)
    leases.finish(lease, outcome)


def test_pages_go_older_then_back_newer_across_shards_and_through_executions_created_in_one_millisecond(
    client: redis.Redis, scripts: Scripts, store: ExecutionStore
) -> None:
    """`next` walks every execution once, newest first, ties at one millisecond included; `previous` walks back the
    same pages, and the newest page has no `previous`."""
    made = created(store, 23)
    tied = made[5:13]  # a fan-out's children share their creation time
    at = int(store.require(made[12]).created_at)
    for execution_id in tied:
        client.zadd(scripts.shards.executions(execution_id), {execution_id: at}, xx=True)
    expected = index_order(client, scripts)
    assert len({scripts.shards.of(e) for e in tied}) > 1 and len(expected) == 23

    pages: list[Page] = [store.page(ListFilter(), None, 5)]
    while pages[-1].next is not None:
        pages.append(store.page(ListFilter(), pages[-1].next, 5))
    assert [ids(p) for p in pages] == [expected[i : i + 5] for i in range(0, 23, 5)]
    assert pages[0].previous is None and all(p.previous is not None for p in pages[1:])
    assert not any(p.partial for p in pages)

    back = [pages[-1]]
    while back[-1].previous is not None:
        back.append(store.page(ListFilter(), back[-1].previous, 5))
    assert [ids(p) for p in reversed(back)] == [ids(p) for p in pages]


def test_a_cursor_shows_the_same_page_after_executions_are_created_or_removed(
    client: redis.Redis, scripts: Scripts, store: ExecutionStore
) -> None:
    """New executions are newer than any page; a cursor whose execution was removed still continues where it was."""
    created(store, 12)
    expected = index_order(client, scripts)
    first = store.page(ListFilter(), None, 4)
    assert first.next is not None
    second = store.page(ListFilter(), first.next, 4)
    created(store, 3)
    assert ids(store.page(ListFilter(), first.next, 4)) == ids(second) == expected[4:8]
    gone = expected[3]  # the position `first.next` names
    client.zrem(scripts.shards.executions(gone), gone)
    client.delete(keys.state(gone), keys.log(gone))
    assert ids(store.page(ListFilter(), first.next, 4)) == expected[4:8]
    # Back up from there: the four right above the removed one (one of them created since), then the newest page.
    now = index_order(client, scripts)
    above = store.page(ListFilter(), Cursor(first.next.position, newer=True), 4)
    assert ids(above) == now[2:6] and above.previous is not None
    top = store.page(ListFilter(), above.previous, 4)
    assert ids(top) == now[:4] and top.previous is None


def test_outcome_filters_pick_finished_executions_by_how_they_ended(client: redis.Redis, scripts: Scripts, store: ExecutionStore) -> None:
    """ok, err (an `err` result), failed (any failure) and one failure kind; an unfinished execution matches none."""
    ok, err, trap, timeout, cancelled, waiting = created(store, 6)
    finish(client, scripts, ok, Outcome(value=3))
    finish(client, scripts, err, Outcome(value={"err": "no stock"}))
    finish(client, scripts, trap, Outcome(failure=Failure("trap", "boom")))
    finish(client, scripts, timeout, Outcome(failure=Failure("timeout", "60 s")))
    assert store.cancel(cancelled) == "cancelled"

    def listed(outcome: str, **more: object) -> set[str]:
        return {s.id for s in store.page(ListFilter(outcome=outcome, **more), None, 50).states}  # type: ignore[arg-type]

    assert listed("ok") == {ok} and listed("err") == {err}
    assert listed("failed") == {trap, timeout, cancelled}
    assert listed("cancelled") == {cancelled} and listed("timeout") == {timeout} and listed("trap") == {trap}
    assert listed("failed", status="finished") == {trap, timeout, cancelled}
    assert listed("failed", ffqn=WF) == set() and listed("continued") == set()
    assert waiting in {s.id for s in store.list(status="pending")[0]}
    assert [s.id for s in store.list(outcome="failed", limit=2)[0]] == [e for e in index_order(client, scripts) if e in (trap, timeout, cancelled)][:2]


def test_a_scan_bound_ends_a_page_partial_and_its_next_searches_on(client: redis.Redis, scripts: Scripts, store: ExecutionStore) -> None:
    """Two failures among the oldest of 30: bounded to 10 states a page, the first pages come back empty and partial,
    each `next` searches on from where the last stopped, and the failures are found once each."""
    failures = created(store, 2)
    for execution_id in failures:
        finish(client, scripts, execution_id, Outcome(failure=Failure("trap", "boom")))
    created(store, 28)
    page = store.page(ListFilter(outcome="failed"), None, 10, scan=10)
    assert page.states == [] and page.partial and page.next is not None and page.previous is None
    seen: list[str] = []
    pages = 1
    while page.next is not None:
        page = store.page(ListFilter(outcome="failed"), page.next, 10, scan=10)
        seen += ids(page)
        pages += 1
    assert sorted(seen) == sorted(failures) and len(seen) == 2
    assert pages == 3 and not page.partial


def test_a_tree_listing_passes_over_children_without_reading_them(client: redis.Redis, scripts: Scripts, store: ExecutionStore) -> None:
    """`roots_only` skips children by their id: 30 children newer than two roots do not use up a bound of 5 states."""
    roots = created(store, 2, ffqn=WF)
    for i in range(1, 31):
        child = NewExecution(id=f"{roots[1]}.{i}", ffqn=ACT, kind="activity", digest="sha256:x", params=[i], parent=roots[1])
        store.create(child)
    page = store.page(ListFilter(roots_only=True), None, 10, scan=5)
    assert sorted(ids(page)) == sorted(roots) and not page.partial and page.next is None
    assert len(store.page(ListFilter(), None, 10, scan=5).states) == 5  # without it, children are states read


def test_a_cursor_round_trips_and_anything_else_is_refused_saying_what_to_pass() -> None:
    """A token parses back to its position and direction; garbage, another JSON or an old offset cursor is a
    UsageError on `cursor` that says what to pass, in the words of the API or of the CLI."""
    cursor = Cursor(Position(1_700_000_000_000, "E_01JD8X3K5QZ6V2N4M7P9R0S1T2.3"), newer=True)
    assert Cursor.parse(cursor.token()) == cursor
    old = "eyJyIjogNTB9"  # {"r": 50}: an offset, as cursors were
    for bad in ("!!", "bm90IGpzb24", old, Cursor(Position(5, "E_x")).token()[:-3]):
        with pytest.raises(UsageError, match=r"pass a page's `next` or `previous` as it is") as refused:
            Cursor.parse(bad, HTTP)
        assert refused.value.path == "cursor"
    with pytest.raises(UsageError, match=r"the `--cursor` value a listing printed"):
        Cursor.parse("!!", CLI)


def test_a_bad_filter_is_refused_naming_the_field_and_the_values_it_takes() -> None:
    """An unknown status or outcome lists the choices; `failed` given as a status points to the outcome filter;
    an outcome with a status other than finished says to leave the status out."""
    with pytest.raises(UsageError, match=r"unknown status 'done'; use one of pending, running, blocked, finished$"):
        ListFilter(status="done")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"unknown status 'failed'.*\('failed' is an outcome: outcome=failed\)"):
        ListFilter(status="failed", surface=HTTP)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"--outcome failed"):
        ListFilter(status="failed")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"unknown outcome 'boom'; use one of ok, err, continued, failed, trap, timeout, cancelled") as refused:
        ListFilter(outcome="boom")
    assert refused.value.path == "outcome"
    with pytest.raises(UsageError, match=r"outcome=failed lists finished executions only, and status=running none of those"):
        ListFilter(outcome="failed", status="running", surface=HTTP)


def test_the_cursors_of_a_page_are_decided_from_what_the_scan_read() -> None:
    """Pure: a full page points past its last row; a bounded empty scan points past the last entry read, partial; a
    scan that ran out points nowhere; a newer scan that reached the top within a page gives way to the newest page."""
    at = [Position(100 - i, f"E_{i}") for i in range(4)]
    states = [ExecutionState(f"E_{i}", ACT, "activity", "sha256:x", "pending", 0, 0, 100 - i, 100 - i, []) for i in range(4)]
    full = older_page(Found(list(zip(at, states)), at[3], False), None, 3)
    assert [s.id for s in full.states] == ["E_0", "E_1", "E_2"] and full.next == Cursor(at[2]) and full.previous is None
    bounded = older_page(Found([], at[3], False), Cursor(at[0]), 3)
    assert bounded.states == [] and bounded.partial and bounded.next == Cursor(at[3])
    assert bounded.previous == Cursor(at[0], newer=True)
    assert older_page(Found(list(zip(at, states))[:2], at[3], True), None, 3).next is None
    assert newer_page(Found(list(zip(at, states))[:2], at[1], True), Cursor(at[3], newer=True), 3) is None
    up = newer_page(Found(list(zip(reversed(at), reversed(states))), at[0], False), Cursor(Position(90, "E_9"), newer=True), 3)
    assert up is not None and [s.id for s in up.states] == ["E_1", "E_2", "E_3"]
    assert up.previous == Cursor(at[1], newer=True) and up.next == Cursor(at[3])
