"""What keeps revisions and component bytes in Redis, and how `platform gc` removes them.

Component bytes (`dolmen:blob:<digest>`) live in the slot of their own key;
revisions in the `{deploy}` slot. No write spans both, so a deploy and a
concurrent gc are ordered by these steps (each one atomic in its slot):

  deploy                                   gc
  D1 claim "<token> <digest>"  {deploy}    G1 read revisions, claims, executions
  D2 unmark + SET NX bytes     blob slot   G2 mark the garbage blob with its token
  D3 commit the revision if    {deploy}    G3 re-check: drop claims older than the
     its claims are all there                 claim TTL; keep what is claimed or
                                              named by a revision G1 did not see
                                           G4 delete the bytes if the mark is its own

A blob deleted at G4 had no D2 between G2 and G4 (D2 removes the mark). If D2
came after G4, D2 writes the bytes again. If D2 came before G2, then D1 came
before G3: G3 saw the claim (so it kept the blob), or had dropped it as stale
(so D3 finds it gone and stores nothing), or D3 had already committed (so G3
saw the revision). Either way no stored revision names deleted bytes, and
no step depends on timing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import cache
from importlib.resources import files


from . import keys
from .connection import Redis, map_redis_errors

# A claim older than this belongs to a deploy that died between claiming and
# committing; gc drops it (and such a deploy, should it still run, stores nothing).
CLAIM_TTL_MS = 60 * 60 * 1000
# How long gc's mark on a blob lives if gc dies before sweeping it.
MARK_TTL_MS = 10 * 60 * 1000


@cache
def _source(name: str) -> str:
    return files("dolmen.platform.store").joinpath("lua").joinpath(f"{name}.lua").read_text()


def _run(client: Redis, name: str, keys_: Sequence[str], args: Sequence[str | int | bytes]) -> object:
    """Call a Lua script of this module (EVALSHA, loaded again after NOSCRIPT)."""
    return client.register_script(_source(name))(keys=list(keys_), args=list(args))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------- deploys


def claim(client: Redis, digests: Iterable[str]) -> tuple[str, ...]:
    """D1: claim components before their bytes are written; returns the claim members for `commit`."""
    token = os.urandom(8).hex()
    members = tuple(f"{token} {d}" for d in dict.fromkeys(digests))
    if members:
        with map_redis_errors():
            _run(client, "deploy_claim", [keys.DEPLOY_CLAIMS], members)
    return members


def put_blob(client: Redis, digest: str, data: bytes) -> None:
    """D2: write component bytes (unless there) and remove any gc mark on them, atomically.

    Bytes already stored are not sent again: a SET of 18 MB counts against
    maxmemory even when NX makes it a no-op, so redeploying an unchanged
    component failed on a store with room for everything but a second copy.
    Once the mark is gone gc can no longer delete the bytes (G4 needs it), so
    seeing them in the same transaction is as good as writing them.
    """
    with map_redis_errors():
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.blob_condemned(digest))
        pipe.exists(keys.blob(digest))
        if pipe.execute()[1]:
            return
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.blob_condemned(digest))
        pipe.set(keys.blob(digest), data, nx=True)
        pipe.execute()


def release(client: Redis, claims: Sequence[str]) -> None:
    """Drop a failed deploy's claims, so gc need not wait `CLAIM_TTL_MS` for them."""
    if claims:
        with map_redis_errors():
            client.zrem(keys.DEPLOY_CLAIMS, *claims)


def commit(client: Redis, number: int, revision_json: str, created_at: int, *, activate: bool, claims: Sequence[str]) -> bool:
    """D3: store a revision (and activate it) if all its claims remain; False when one was dropped."""
    with map_redis_errors():
        reply = _run(
            client,
            "deploy_commit",
            [keys.deployment(number), keys.DEPLOY_REVS, keys.DEPLOY_ACTIVE, keys.DEPLOY_RETIRED, keys.DEPLOY_CLAIMS],
            [number, revision_json, created_at, 1 if activate else 0, *claims],
        )
    return _text(reply) == "ok"


def activate(client: Redis, number: int) -> bool:
    """Make a stored revision active, recording when the previous one retired; False if it does not exist."""
    with map_redis_errors():
        reply = _run(client, "deploy_activate", [keys.deployment(number), keys.DEPLOY_ACTIVE, keys.DEPLOY_RETIRED], [number])
    return int(reply) == 1  # type: ignore[call-overload]


# -------------------------------------------------------------------------- gc


def retired(client: Redis) -> dict[int, int]:
    """Revision number -> ms when it stopped being the active one."""
    with map_redis_errors():
        raw: dict[bytes, bytes] = client.hgetall(keys.DEPLOY_RETIRED)  # type: ignore[assignment]
    return {int(k): int(v) for k, v in raw.items()}


def claims(client: Redis) -> dict[str, int]:
    """Digest -> ms of its latest claim by a deploy in progress."""
    with map_redis_errors():
        raw: list[tuple[bytes, float]] = client.zrange(keys.DEPLOY_CLAIMS, 0, -1, withscores=True)  # type: ignore[assignment]
    out: dict[str, int] = {}
    for member, score in raw:
        digest = _text(member).partition(" ")[2]
        out[digest] = max(out.get(digest, 0), int(score))
    return out


def blob_sizes(client: Redis) -> dict[str, int]:
    """Every component stored in Redis, with its size in bytes."""
    digests: list[str] = []
    with map_redis_errors():
        # SCAN walks the whole keyspace (MATCH filters on the server): large batches, few round trips.
        for key in client.scan_iter(match=f"{keys.BLOB_PREFIX}*", count=5000):
            digests.append(_text(key)[len(keys.BLOB_PREFIX) :])
        pipe = client.pipeline(transaction=False)
        for digest in digests:
            pipe.strlen(keys.blob(digest))
        sizes = pipe.execute()
    return {d: int(s) for d, s in zip(digests, sizes) if int(s) > 0}


def prune(client: Redis, numbers: Sequence[int], grace_ms: int) -> list[int]:
    """Delete these revisions, except the active one and any stored or retired within `grace_ms`; returns those deleted."""
    if not numbers:
        return []
    with map_redis_errors():
        reply = _run(
            client,
            "gc_prune",
            [keys.DEPLOY_REVS, keys.DEPLOY_ACTIVE, keys.DEPLOY_RETIRED, *(keys.deployment(n) for n in numbers)],
            [grace_ms, *numbers],
        )
    return [int(_text(n)) for n in reply]  # type: ignore[union-attr]


def mark(client: Redis, digests: Sequence[str], token: str) -> None:
    """G2: mark blobs as about to be deleted by this gc run."""
    with map_redis_errors():
        pipe = client.pipeline(transaction=False)
        for digest in digests:
            pipe.set(keys.blob_condemned(digest), token, px=MARK_TTL_MS)
        pipe.execute()


def recheck(client: Redis, digests: Sequence[str], seen_revisions: Iterable[int]) -> list[str]:
    """G3: the digests still garbage: unclaimed, and named by no revision outside `seen_revisions`."""
    if not digests:
        return []
    prefix = keys.deployment(0)[:-1]
    with map_redis_errors():
        reply = _run(
            client,
            "gc_recheck",
            [keys.DEPLOY_CLAIMS, keys.DEPLOY_REVS],
            [CLAIM_TTL_MS, ",".join(str(n) for n in seen_revisions), prefix, *digests],
        )
    return [_text(d) for d in reply]  # type: ignore[union-attr]


def unmark(client: Redis, digests: Sequence[str], token: str) -> None:
    """Remove this run's marks from blobs it keeps after all (a deploy removes them too)."""
    with map_redis_errors():
        for digest in digests:
            # Not atomic: deleting another run's mark only makes that run keep the blob.
            if client.get(keys.blob_condemned(digest)) == token.encode():
                client.delete(keys.blob_condemned(digest))


def sweep(client: Redis, digest: str, token: str) -> int | None:
    """G4: delete a blob still marked by this run; its size, or None when the mark is gone."""
    with map_redis_errors():
        size = int(_run(client, "gc_sweep", [keys.blob(digest), keys.blob_condemned(digest)], [token]))  # type: ignore[call-overload]
    return None if size < 0 else size
