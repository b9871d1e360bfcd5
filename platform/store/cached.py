"""A value read from the store and kept for a while: for what every queue read consults but seldom changes."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class CachedRead(Generic[T]):
    """`read()`'s last result, read again at most every `every_s` seconds; thread-safe.

    `get()` raises what `read()` raises (a `StoreError` when the store cannot
    be reached) and then keeps the value it had, to be read again next time.
    """

    def __init__(self, read: Callable[[], T], initial: T, every_s: float) -> None:
        self._read = read
        self.every_s = every_s
        self._value = initial
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, read again first when the last read is more than `every_s` old."""
        with self._lock:
            if time.monotonic() - self._read_at > self.every_s:
                self._value = self._read()
                self._read_at = time.monotonic()
            return self._value


__all__ = ["CachedRead"]
