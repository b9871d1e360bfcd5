"""Which priority classes other than normal were ever queued (`dolmen:priorities`, see platform/priorities.py)."""

from __future__ import annotations

import time

from . import keys
from .connection import Redis, map_redis_errors

# How often readers look again, in seconds: a first execution of a new class waits at most this long.
CLASSES_EVERY_S = 1.0


class ClassesInUse:
    """The classes in use as last read, read again at most every `CLASSES_EVERY_S` (they are only ever added)."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self._known: frozenset[str] = frozenset()
        self._read_at = 0.0

    def get(self) -> frozenset[str]:
        """The classes in use; raises `StoreError` when the store cannot be reached."""
        if time.monotonic() - self._read_at > CLASSES_EVERY_S:
            with map_redis_errors():
                raw: set[bytes] = self.client.smembers(keys.PRIORITIES)  # type: ignore[assignment]
            self._known = frozenset(m.decode() for m in raw)
            self._read_at = time.monotonic()
        return self._known


__all__ = ["CLASSES_EVERY_S", "ClassesInUse"]
