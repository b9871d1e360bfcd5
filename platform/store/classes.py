"""Which priority classes other than normal were ever queued (`dolmen:priorities`, see platform/priorities.py)."""

from __future__ import annotations

from . import keys
from .cached import CachedRead
from .connection import Redis, map_redis_errors

# How often readers look again, in seconds: a first execution of a new class waits at most this long.
CLASSES_EVERY_S = 1.0


class ClassesInUse(CachedRead[frozenset[str]]):
    """The classes in use as last read, read again at most every `CLASSES_EVERY_S` (they are only ever added).

    `get()` raises `StoreError` when the store cannot be reached.
    """

    def __init__(self, client: Redis) -> None:
        self.client = client
        super().__init__(self._members, frozenset(), CLASSES_EVERY_S)

    def _members(self) -> frozenset[str]:
        with map_redis_errors():
            raw: set[bytes] = self.client.smembers(keys.PRIORITIES)  # type: ignore[assignment]
        return frozenset(m.decode() for m in raw)


__all__ = ["CLASSES_EVERY_S", "ClassesInUse"]
