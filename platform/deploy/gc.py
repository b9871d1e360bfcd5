"""`platform gc`: prune old revisions and remove component bytes that nothing needs any more.

Kept revisions: the active one; the last `keep` made by `platform deploy`
(those of `platform fork`/`rerun --component` do not count); every revision
that unfinished executions name (they were started from it or moved to it);
the target of a queued upgrade; and any revision stored, or active, less than
`grace` ago (a gateway or runner may still hold it in a cache and start an
execution on it). Kept components: those a kept revision names, those
unfinished executions are pinned to (counted as `platform versions` counts
them), those a queued upgrade moves to, and those a deploy in progress has
claimed. The bytes of every other component in Redis are removed, and so are
its files in this machine's data directory.

`plan` decides from a `Snapshot`, without I/O; `collect` reads the snapshot,
then removes what the plan says in the order `store/garbage.py` makes safe
against concurrent deploys.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from ..wasm.cache import ComponentCache
from ..errors import NotFoundError
from ..store import garbage
from ..store.deployments import DeploymentStore
from ..store.clock import now_ms
from ..store.repins import UpgradeStore
from .components import ADHOC_PREFIX
from ..model import Revision
from .versions import summarize, unfinished
from ..store.connection import StoreClient

DEFAULT_KEEP = 10
DEFAULT_GRACE_MS = 5 * 60 * 1000


@dataclass(frozen=True, slots=True)
class GcPolicy:
    """How much history `platform gc` keeps: the last `keep` deployed revisions, and any stored or active within
    `grace_ms`."""

    keep: int = DEFAULT_KEEP
    grace_ms: int = DEFAULT_GRACE_MS


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What gc decides from, read before anything is removed."""

    revisions: tuple[Revision, ...]
    active: int | None
    retired: Mapping[int, int]  # revision -> ms it stopped being active
    blobs: Mapping[str, int]  # digest -> bytes in Redis
    pinned: Mapping[str, int]  # digest -> unfinished executions on it
    running: Mapping[int, int]  # revision -> unfinished executions naming it
    upgrades: frozenset[tuple[str, int | None]]  # queued upgrades: (to digest, to revision)
    claims: Mapping[str, int]  # digest -> ms of a deploy's claim
    now_ms: int


@dataclass(frozen=True, slots=True)
class RevisionFate:
    """A revision and why it is kept (no reasons: it is pruned)."""

    number: int
    name: str
    created_at: int
    reasons: tuple[str, ...]

    @property
    def kept(self) -> bool:
        """Whether it stays (it has a reason to)."""
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        """`{"revision", "name", "created_at" (ms), "kept", "reasons"}`."""
        return {"revision": self.number, "name": self.name, "created_at": self.created_at, "kept": self.kept, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class ComponentFate:
    """A component in Redis: its size, the names it was deployed under, and why it is kept (none: removed)."""

    digest: str
    size: int
    names: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def kept(self) -> bool:
        """Whether it stays (it has a reason to)."""
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        """`{"digest", "bytes", "components" (its names), "kept", "reasons"}`."""
        return {"digest": self.digest, "bytes": self.size, "components": list(self.names), "kept": self.kept, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class GcPlan:
    """Every revision and every stored component, each kept (with reasons) or not."""

    revisions: tuple[RevisionFate, ...]
    components: tuple[ComponentFate, ...]

    def pruned(self) -> list[int]:
        """The numbers of the revisions to remove."""
        return [r.number for r in self.revisions if not r.kept]

    def garbage(self) -> list[str]:
        """The digests of the components to remove."""
        return [c.digest for c in self.components if not c.kept]


def plan(snapshot: Snapshot, policy: GcPolicy) -> GcPlan:
    """Decide which revisions and components go, and why the others stay."""
    deployed = sorted((r.number for r in snapshot.revisions if not r.name.startswith(ADHOC_PREFIX)), reverse=True)
    recent = set(deployed[: max(0, policy.keep)])
    upgrade_revisions = {rev for _, rev in snapshot.upgrades if rev is not None}
    fates: list[RevisionFate] = []
    for revision in sorted(snapshot.revisions, key=lambda r: r.number, reverse=True):
        n = revision.number
        reasons: list[str] = []
        if n == snapshot.active:
            reasons.append("active")
        if n in recent:
            reasons.append(f"one of the last {policy.keep}")
        if snapshot.running.get(n):
            count = snapshot.running[n]
            reasons.append(f"{count} unfinished execution{'s' if count != 1 else ''}")
        if n in upgrade_revisions:
            reasons.append("a queued upgrade")
        last_used = max(revision.created_at, snapshot.retired.get(n, 0))
        if n != snapshot.active and snapshot.now_ms - last_used < policy.grace_ms:
            reasons.append(f"stored or active less than {_duration(policy.grace_ms)} ago")
        fates.append(RevisionFate(n, revision.name, revision.created_at, tuple(reasons)))
    kept = {f.number for f in fates if f.kept}
    kept_in: dict[str, list[int]] = {}
    names: dict[str, set[str]] = {}
    for revision in snapshot.revisions:
        for comp in revision.components:
            names.setdefault(comp.digest, set()).add(comp.name)
            if revision.number in kept:
                kept_in.setdefault(comp.digest, []).append(revision.number)
    upgrade_digests = {digest for digest, _ in snapshot.upgrades}
    components: list[ComponentFate] = []
    for digest, size in sorted(snapshot.blobs.items()):
        reasons = []
        if digest in kept_in:
            numbers = sorted(kept_in[digest])
            reasons.append(f"in revision{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}")
        if snapshot.pinned.get(digest):
            count = snapshot.pinned[digest]
            reasons.append(f"{count} unfinished execution{'s' if count != 1 else ''}")
        if digest in upgrade_digests:
            reasons.append("a queued upgrade")
        if digest in snapshot.claims:
            reasons.append("a deploy in progress is storing it")
        components.append(ComponentFate(digest, size, tuple(sorted(names.get(digest, ()))), tuple(reasons)))
    return GcPlan(tuple(fates), tuple(components))


@dataclass(frozen=True, slots=True)
class GcReport:
    """What gc did (or, in a dry run, would do)."""

    dry_run: bool
    policy: GcPolicy
    plan: GcPlan
    pruned: tuple[int, ...]  # revisions removed (the plan's, in a dry run)
    collected: tuple[ComponentFate, ...]  # components removed (the plan's, in a dry run)
    spared: tuple[str, ...] = ()  # planned but kept after all: a concurrent deploy or rollback needs them
    local_bytes: int = 0  # freed in this machine's data directory

    @property
    def freed(self) -> int:
        """Bytes of component blobs removed from Redis (or that would be)."""
        return sum(c.size for c in self.collected)

    def to_json(self) -> dict[str, Any]:
        """The JSON output of `platform gc --json`; sizes in bytes, `grace_ms` in ms."""
        return {
            "dry_run": self.dry_run,
            "keep": self.policy.keep,
            "grace_ms": self.policy.grace_ms,
            "revisions": [r.to_json() for r in self.plan.revisions],
            "pruned": list(self.pruned),
            "components": [c.to_json() for c in self.plan.components],
            "collected": [c.digest for c in self.collected],
            "spared": list(self.spared),
            "bytes_freed": self.freed,
            "local_bytes_freed": self.local_bytes,
        }


def read_snapshot(client: StoreClient) -> Snapshot:
    """Read everything gc decides from; components last, so that none stored meanwhile is missed by the re-check."""
    store = DeploymentStore(client)
    now = now_ms()
    revisions: list[Revision] = []
    for number in store.numbers():
        try:
            revisions.append(store.get(number))
        except NotFoundError:  # pruned by another gc meanwhile
            continue
    active = store.active_number()
    states = unfinished(client)
    active_revision = next((r for r in revisions if r.number == active), None)
    pinned = {row.digest: row.unfinished for row in summarize(states, active_revision) if row.unfinished}
    running = Counter(s.revision for s in states if s.revision is not None and s.live)
    upgrades: set[tuple[str, int | None]] = set()
    for request in UpgradeStore(client).requests():
        change = request.get("change", {})
        if change.get("to_digest"):
            upgrades.add((str(change["to_digest"]), change.get("to_revision")))
    return Snapshot(
        revisions=tuple(revisions),
        active=active,
        retired=garbage.retired(client),
        blobs=garbage.blob_sizes(client),
        pinned=pinned,
        running=dict(running),
        upgrades=frozenset(upgrades),
        # A claim older than its TTL is a dead deploy's: not a reason to keep anything (G3 drops it).
        claims={d: at for d, at in garbage.claims(client).items() if at > now - garbage.CLAIM_TTL_MS},
        now_ms=now,
    )


def collect(client: StoreClient, data_dir: Path | None, policy: GcPolicy, *, dry_run: bool = False) -> GcReport:
    """Prune revisions and remove unneeded component bytes (only report them with `dry_run`).

    Revisions first, atomically re-checked (one that became active or was
    used within the grace period meanwhile stays); then components whose only
    revisions were pruned, each marked, re-checked against deploys in progress
    and deleted only if still marked (`store/garbage.py`). The files of the
    removed components in `data_dir` go too.
    """
    snapshot = read_snapshot(client)
    decided = plan(snapshot, policy)
    if dry_run:
        would_go = tuple(c for c in decided.components if not c.kept)
        return GcReport(True, policy, decided, tuple(decided.pruned()), would_go)
    pruned = garbage.prune(client, decided.pruned(), policy.grace_ms)
    # Revisions the plan wanted gone but that stayed (re-activated meanwhile) keep their components.
    stayed = set(decided.pruned()) - set(pruned)
    needed = {c.digest for r in snapshot.revisions if r.number in stayed for c in r.components}
    candidates = [c for c in decided.components if not c.kept and c.digest not in needed]
    token = os.urandom(8).hex()
    digests = [c.digest for c in candidates]
    garbage.mark(client, digests, token)
    still = set(garbage.recheck(client, digests, (r.number for r in snapshot.revisions)))
    garbage.unmark(client, [d for d in digests if d not in still], token)
    collected: list[ComponentFate] = []
    for fate in candidates:
        if fate.digest in still and (size := garbage.sweep(client, fate.digest, token)) is not None:
            collected.append(ComponentFate(fate.digest, size, fate.names, ()))
    local = 0
    if data_dir is not None:
        cache = ComponentCache(data_dir)
        local = sum(cache.discard(c.digest) for c in collected)
    spared = tuple(sorted({c.digest for c in decided.components if not c.kept} - {c.digest for c in collected}))
    return GcReport(False, policy, decided, tuple(pruned), tuple(collected), spared, local)


def _duration(ms: int) -> str:
    for unit, scale in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= scale and ms % scale == 0:
            return f"{ms // scale}{unit}"
    return f"{ms}ms"
