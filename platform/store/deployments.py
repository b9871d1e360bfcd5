"""Deployment revisions and component blobs in Redis."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


from ..wasm.cache import ComponentCache, sha256_digest
from ..model import Revision
from ..errors import IntegrityError, NotFoundError, StoreError, StoreFullError
from . import garbage, keys
from .connection import Redis, map_redis_errors


class DeploymentStore:
    """Revisions are immutable; `active` names the one new executions use."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    def put_revision(self, build: Any, *, activate: bool = True, blobs: Sequence[bytes] = ()) -> Revision:
        """Store `blobs` (component bytes), then a new revision built by `build(number) -> Revision`, atomically.

        The components are claimed before their bytes are written, so that a
        concurrent `platform gc` cannot collect them (see `garbage`). Raises
        `StoreFullError` when Redis is over maxmemory (no revision stored), and
        `StoreError` when storing took longer than `garbage.CLAIM_TTL_MS`.
        """
        digests = [sha256_digest(data) for data in blobs]
        claims = garbage.claim(self.client, digests)
        try:
            for digest, data in zip(digests, blobs):
                garbage.put_blob(self.client, digest, data)
            with map_redis_errors():
                number = int(self.client.incr(keys.DEPLOY_SEQ))  # type: ignore[arg-type]
            revision: Revision = build(number)
            stored = garbage.commit(
                self.client, number, json.dumps(revision.to_json()), revision.created_at, activate=activate, claims=claims
            )
        except StoreFullError:
            with contextlib.suppress(StoreError):
                garbage.release(self.client, claims)
            raise StoreFullError(
                "Redis is full: its memory use reached maxmemory, so the deployment was not applied (no revision "
                "was stored; the components stored before the refusal stay until `platform gc` removes them). "
                "Make room, then deploy again: `platform gc` (old revisions and components), `platform executions "
                "purge` (finished executions), or raise the limit (`platform up --maxmemory SIZE` for the embedded "
                "Valkey, CONFIG SET maxmemory on your own server); `platform status` shows the memory use"
            ) from None
        except BaseException:
            # Released at once, not after CLAIM_TTL_MS: gc would keep the bytes "for a deploy in progress" meanwhile.
            with contextlib.suppress(StoreError):
                garbage.release(self.client, claims)
            raise
        if not stored:
            raise StoreError(
                f"revision {number} was not stored: storing its components took longer than "
                f"{garbage.CLAIM_TTL_MS // 60000} minutes and `platform gc` may have collected them; deploy again"
            )
        return revision

    def activate(self, number: int) -> Revision:
        """Make an existing revision the active one (rollback); `NotFoundError` when it does not exist (any more)."""
        revision = self.get(number)
        if not garbage.activate(self.client, number):
            raise NotFoundError(f"deployment revision {number} was just removed by `platform gc`; `platform deployments list` shows those left")
        return revision

    def active_number(self) -> int | None:
        """The active revision's number; None before the first deploy."""
        with map_redis_errors():
            raw = self.client.get(keys.DEPLOY_ACTIVE)
        return None if raw is None else int(raw)  # type: ignore[arg-type]

    def active(self) -> Revision | None:
        """The active revision; None before the first deploy."""
        number = self.active_number()
        return None if number is None else self.get(number)

    def get(self, number: int) -> Revision:
        """Revision `number`; `NotFoundError` when there is none (never stored, or removed by `platform gc`)."""
        with map_redis_errors():
            raw = self.client.get(keys.deployment(number))
        if raw is None:
            raise NotFoundError(f"deployment revision {number} does not exist; `platform deployments list` shows them")
        return Revision.from_json(json.loads(raw))  # type: ignore[arg-type]

    def numbers(self) -> list[int]:
        """The stored revisions' numbers, oldest first."""
        with map_redis_errors():
            raw: list[bytes] = self.client.zrange(keys.DEPLOY_REVS, 0, -1)  # type: ignore[assignment]
        return [int(r) for r in raw]

    # ------------------------------------------------------------------ blobs

    def put_blob(self, data: bytes) -> str:
        """Share component bytes with every runner; returns the digest.

        Without a revision naming them, `platform gc` may collect them: deploys use `put_revision(blobs=...)`.
        """
        digest = sha256_digest(data)
        garbage.put_blob(self.client, digest, data)
        return digest

    def fetcher(self, cache: ComponentCache) -> Callable[[str], None]:
        """`fetch` for a `ComponentLoader`: copies missing components from Redis into `cache`."""
        return lambda digest: self.fetch_blob(digest, cache)

    def fetch_blob(self, digest: str, cache: ComponentCache) -> None:
        """Copy a component from Redis into the local cache, verifying its digest (`sha256:HEX`).

        Raises `NotFoundError` when Redis does not hold it, `IntegrityError`
        when the bytes stored do not match the digest.
        """
        if cache.has(digest):
            return
        with map_redis_errors():
            data = self.client.get(keys.blob(digest))
        if data is None:
            raise NotFoundError(
                f"component {digest} is neither in the local cache nor in Redis (`platform gc` removes components "
                "that no kept revision and no unfinished execution needs); deploy it again"
            )
        try:
            cache.put(data, expected_digest=digest)  # type: ignore[arg-type]
        except IntegrityError:
            raise IntegrityError(f"component bytes stored in Redis for {digest} do not match the digest; deploy it again") from None


REVISIONS_KEPT = 64  # revisions a RevisionCache keeps in memory


class RevisionCache:
    """The active revision, re-read at most every `ttl_s` seconds, and the last used revisions by number (thread-safe)."""

    def __init__(self, store: DeploymentStore, ttl_s: float = 1.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: Revision | None = None
        self._fetched = 0.0
        # Revisions are immutable: the most recently used ones by number (thread-safe, C-implemented).
        self._by_number = functools.lru_cache(maxsize=REVISIONS_KEPT)(store.get)

    def active(self, *, fresh: bool = False) -> Revision | None:
        """The active revision, at most `ttl_s` old (`fresh`: read now); None before the first deploy."""
        # One thread refreshes; the others keep using the cached revision meanwhile
        # instead of queueing behind a Redis round trip.
        stale = fresh or time.monotonic() - self._fetched > self.ttl_s
        if not stale or not self._lock.acquire(blocking=fresh or self._cached is None and self._fetched == 0.0):
            return self._cached
        try:
            number = self.store.active_number()
            if number is None:
                self._cached = None
            elif self._cached is None or self._cached.number != number:
                self._cached = self.get(number)
            self._fetched = time.monotonic()
            return self._cached
        finally:
            self._lock.release()

    def get(self, number: int) -> Revision:
        """Revision `number`, from memory when it was read before; `NotFoundError` as `DeploymentStore.get`."""
        return self._by_number(number)
