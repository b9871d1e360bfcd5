"""`platform gc` against concurrent deploys and rollbacks: every interleaving of their steps keeps stored revisions whole."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from dolmen.platform.deploy import gc
from dolmen.platform.deploy.gc import GcPolicy, Snapshot, collect, plan
from dolmen.platform.model import ComponentConfig, Revision
from dolmen.platform.errors import NotFoundError
from dolmen.platform.store import garbage, keys
from dolmen.platform.store.deployments import DeploymentStore
from dolmen.platform.store.clock import now_ms
from dolmen.platform.wasm.cache import sha256_digest

OLD = b"\0asm old component bytes"
NEW = b"\0asm new component bytes"
D_OLD, D_NEW = sha256_digest(OLD), sha256_digest(NEW)
NO_GRACE = GcPolicy(keep=1, grace_ms=0)


def revision(number: int, *digests: str, name: str = "test", created_at: int | None = None) -> Revision:
    comps = tuple(ComponentConfig(f"c{i}", "activity", d, "test", {}) for i, d in enumerate(digests))
    return Revision(number, name, now_ms() if created_at is None else created_at, comps)


def store_revision(client: redis.Redis, digest: str, data: bytes) -> Revision:
    return DeploymentStore(client).put_revision(lambda n: revision(n, digest), blobs=[data])


def whole(client: redis.Redis) -> list[str]:
    """Digests that a stored revision names but whose bytes are missing (empty when every revision is whole)."""
    store = DeploymentStore(client)
    return [c.digest for n in store.numbers() for c in store.get(n).components if not client.exists(keys.blob(c.digest))]


class Deploy:
    """A deploy of revision 3 naming D_OLD again, in the three steps `DeploymentStore.put_revision` takes."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.claims: tuple[str, ...] = ()
        self.stored: bool | None = None

    def step(self, name: str) -> None:
        if name == "claim":
            self.claims = garbage.claim(self.client, [D_OLD])
        elif name == "put":
            garbage.put_blob(self.client, D_OLD, OLD)
        else:
            number = int(self.client.incr(keys.DEPLOY_SEQ))  # type: ignore[arg-type]
            rev = revision(number, D_OLD)
            self.stored = garbage.commit(self.client, number, json.dumps(rev.to_json()), rev.created_at, activate=True, claims=self.claims)


GC_STEPS = ("read_snapshot", "prune", "mark", "recheck", "sweep")
DEPLOY_STEPS = ("claim", "put", "commit")


def interleave(monkeypatch: pytest.MonkeyPatch, after: dict[str, Callable[[], None]]) -> None:
    """Run `after[step]` right after gc's step `step` (once)."""

    def wrap(module: Any, name: str) -> None:
        original = getattr(module, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            hook = after.pop(name, None)
            if hook is not None:
                hook()
            return result

        monkeypatch.setattr(module, name, wrapped)

    wrap(gc, "read_snapshot")
    for name in GC_STEPS[1:]:
        wrap(garbage, name)


@pytest.mark.parametrize("claim_ttl", [garbage.CLAIM_TTL_MS, -1], ids=["claims-fresh", "claims-expired"])
@pytest.mark.parametrize("schedule", list(itertools.combinations_with_replacement(range(6), 3)))
def test_gc_and_deploy_interleaved_keep_every_stored_revision_whole(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch, schedule: tuple[int, int, int], claim_ttl: int
) -> None:
    """Whatever gc step each deploy step follows, no stored revision names bytes that gc deleted."""
    store_revision(client, D_OLD, OLD)  # revision 1: pruned by gc, D_OLD garbage...
    store_revision(client, D_NEW, NEW)  # revision 2: active
    monkeypatch.setattr(garbage, "CLAIM_TTL_MS", claim_ttl)
    deploy = Deploy(client)
    # ...unless the deploy of revision 3, which names D_OLD again, gets in the way.
    at: dict[int, list[str]] = {}
    for step, position in zip(DEPLOY_STEPS, schedule):
        at.setdefault(position, []).append(step)
    # Position 0: before gc; 1-4: right after its first four steps; 5: after its sweep.
    hooks = {GC_STEPS[i - 1]: (lambda steps=steps: [deploy.step(s) for s in steps]) for i, steps in at.items() if 0 < i < 5}
    interleave(monkeypatch, hooks)  # type: ignore[arg-type]
    for step in at.get(0, []):
        deploy.step(step)
    report = collect(client, None, NO_GRACE)
    for step in at.get(5, []):
        deploy.step(step)
    assert whole(client) == []
    assert 1 in report.pruned
    if deploy.stored is False:
        # Only a claim gc dropped as abandoned makes a commit fail; nothing was stored then.
        assert claim_ttl < 0 and 3 not in DeploymentStore(client).numbers()
    else:
        assert deploy.stored and 3 in DeploymentStore(client).numbers()
    if schedule == (0, 0, 0):
        assert D_OLD not in [c.digest for c in report.collected]  # the deploy came first: D_OLD is in revision 3
    if schedule == (5, 5, 5):
        assert [c.digest for c in report.collected] == [D_OLD]  # collected, then stored again by the deploy
        assert client.get(keys.blob(D_OLD)) == OLD


def test_put_revision_claims_then_stores_bytes_then_commits(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deploy takes the steps in the order the protocol needs."""
    calls: list[str] = []
    for name in ("claim", "put_blob", "commit"):
        original = getattr(garbage, name)
        monkeypatch.setattr(garbage, name, lambda *a, _o=original, _n=name, **k: (calls.append(_n), _o(*a, **k))[1])
    stored = store_revision(client, D_OLD, OLD)
    assert calls == ["claim", "put_blob", "commit"]
    assert DeploymentStore(client).active_number() == stored.number and client.get(keys.blob(D_OLD)) == OLD
    assert client.zcard(keys.DEPLOY_CLAIMS) == 0  # the commit released its claims


def test_a_rollback_during_gc_keeps_the_revision_and_its_components(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revision made active again between gc's reading and its pruning stays, with its bytes."""
    store_revision(client, D_OLD, OLD)
    store_revision(client, D_NEW, NEW)
    interleave(monkeypatch, {"read_snapshot": lambda: DeploymentStore(client).activate(1) and None})
    report = collect(client, None, NO_GRACE)
    assert report.pruned == () and report.collected == () and report.spared == (D_OLD,)
    assert DeploymentStore(client).active_number() == 1 and whole(client) == []


def test_a_rollback_to_a_pruned_revision_is_refused(client: redis.Redis) -> None:
    """Once gc removed a revision, rolling back to it fails and changes nothing."""
    store_revision(client, D_OLD, OLD)
    store_revision(client, D_NEW, NEW)
    assert collect(client, None, NO_GRACE).pruned == (1,)
    assert not garbage.activate(client, 1)
    with pytest.raises(NotFoundError):
        DeploymentStore(client).activate(1)
    assert DeploymentStore(client).active_number() == 2


def test_a_revision_retired_within_the_grace_period_is_kept(client: redis.Redis) -> None:
    """The revision a deploy just replaced stays for the grace period: caches may still start executions on it."""
    store_revision(client, D_OLD, OLD)
    store_revision(client, D_NEW, NEW)
    client.zadd(keys.DEPLOY_REVS, {"1": 0})  # stored long ago, but active until a moment ago
    report = collect(client, None, GcPolicy(keep=1, grace_ms=60_000))
    assert report.pruned == () and report.collected == ()
    (first,) = [r for r in report.plan.revisions if r.number == 1]
    assert first.reasons == ("stored or active less than 1m ago",)
    assert garbage.prune(client, [1], 60_000) == []  # the script checks it again


def snapshot(revisions: list[Revision], **fields: Any) -> Snapshot:
    blobs = {c.digest: 10 for r in revisions for c in r.components}
    base: dict[str, Any] = dict(
        revisions=tuple(revisions), active=revisions[-1].number, retired={}, blobs=blobs, pinned={}, running={},
        upgrades=frozenset(), claims={}, now_ms=10**13,
    )  # fmt: skip
    return Snapshot(**{**base, **fields})


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def test_plan_keeps_the_last_deployed_the_active_and_the_referenced_revisions() -> None:
    """Beyond the last N deployed revisions only the active one, those with unfinished executions or a queued upgrade stay."""
    revs = [revision(n, digest(n), created_at=0) for n in range(1, 8)]
    revs[4] = revision(5, digest(5), name="adhoc:0123", created_at=0)  # made by fork/rerun: not counted in N
    decided = plan(
        snapshot(revs, active=2, running={3: 2}, pinned={digest(3): 2}, upgrades=frozenset({(digest(4), 4)})),
        GcPolicy(keep=2, grace_ms=0),
    )
    reasons = {r.number: r.reasons for r in decided.revisions}
    assert reasons == {
        7: ("one of the last 2",), 6: ("one of the last 2",), 5: (), 4: ("a queued upgrade",),
        3: ("2 unfinished executions",), 2: ("active",), 1: (),
    }  # fmt: skip
    assert decided.pruned() == [5, 1] and sorted(decided.garbage()) == [digest(1), digest(5)]
    kept = {c.digest: c.reasons for c in decided.components if c.kept}
    assert kept[digest(3)] == ("in revision 3", "2 unfinished executions")


def test_plan_never_removes_claimed_or_pinned_components() -> None:
    """Bytes a deploy claimed, or that unfinished executions run on, stay even when no revision names them."""
    revs = [revision(1, digest(1), created_at=0)]
    decided = plan(
        snapshot(revs, blobs={digest(1): 1, digest(8): 5, digest(9): 7, digest(10): 3}, claims={digest(8): 1}, pinned={digest(9): 1}),
        GcPolicy(keep=0, grace_ms=0),
    )
    assert decided.garbage() == [digest(10)]
