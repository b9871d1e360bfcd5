"""Deployment revisions and component blobs in Redis."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
import time
from typing import Any

import redis

from ...registry.cache import ComponentCache, sha256_digest
from ..deploy.model import Revision
from ..errors import IntegrityError, NotFoundError
from . import keys
from .connection import map_redis_errors


class DeploymentStore:
    """Revisions are immutable; `active` names the one new executions use."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def put_revision(self, build: Any, *, activate: bool = True) -> Revision:
        """Store a new revision built by `build(number) -> Revision`, atomically."""
        with map_redis_errors():
            number = int(self.client.incr(keys.DEPLOY_SEQ))  # type: ignore[arg-type]
            revision: Revision = build(number)
            pipe = self.client.pipeline(transaction=True)
            pipe.set(keys.deployment(number), json.dumps(revision.to_json()))
            pipe.zadd(keys.DEPLOY_REVS, {str(number): revision.created_at})
            if activate:
                pipe.set(keys.DEPLOY_ACTIVE, number)
            pipe.execute()
        return revision

    def activate(self, number: int) -> Revision:
        """Make an existing revision the active one (rollback)."""
        revision = self.get(number)
        with map_redis_errors():
            self.client.set(keys.DEPLOY_ACTIVE, number)
        return revision

    def active_number(self) -> int | None:
        with map_redis_errors():
            raw = self.client.get(keys.DEPLOY_ACTIVE)
        return None if raw is None else int(raw)  # type: ignore[arg-type]

    def active(self) -> Revision | None:
        number = self.active_number()
        return None if number is None else self.get(number)

    def get(self, number: int) -> Revision:
        with map_redis_errors():
            raw = self.client.get(keys.deployment(number))
        if raw is None:
            raise NotFoundError(f"deployment revision {number} does not exist; `platform deployments list` shows them")
        return Revision.from_json(json.loads(raw))  # type: ignore[arg-type]

    def numbers(self) -> list[int]:
        with map_redis_errors():
            raw: list[bytes] = self.client.zrange(keys.DEPLOY_REVS, 0, -1)  # type: ignore[assignment]
        return [int(r) for r in raw]

    # ------------------------------------------------------------------ blobs

    def put_blob(self, data: bytes) -> str:
        """Share component bytes with every runner; returns the digest."""
        digest = sha256_digest(data)
        with map_redis_errors():
            self.client.set(keys.blob(digest), data, nx=True)
        return digest

    def fetcher(self, cache: ComponentCache) -> Callable[[str], None]:
        """`fetch` for a `ComponentLoader`: copies missing components from Redis into `cache`."""
        return lambda digest: self.fetch_blob(digest, cache)

    def fetch_blob(self, digest: str, cache: ComponentCache) -> None:
        """Copy a component from Redis into the local cache, verifying its digest."""
        if cache.has(digest):
            return
        with map_redis_errors():
            data = self.client.get(keys.blob(digest))
        if data is None:
            raise NotFoundError(
                f"component {digest} is neither in the local cache nor in Redis; deploy it again"
            )
        try:
            cache.put(data, expected_digest=digest)  # type: ignore[arg-type]
        except IntegrityError:
            raise IntegrityError(f"component bytes stored in Redis for {digest} do not match the digest; deploy it again") from None


class RevisionCache:
    """The active revision, re-read at most every `ttl_s` seconds (thread-safe)."""

    def __init__(self, store: DeploymentStore, ttl_s: float = 1.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: Revision | None = None
        self._fetched = 0.0
        self._by_number: dict[int, Revision] = {}

    def active(self, *, fresh: bool = False) -> Revision | None:
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
        revision = self._by_number.get(number)
        if revision is None:
            revision = self.store.get(number)
            self._by_number[number] = revision
        return revision
