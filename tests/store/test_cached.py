"""`CachedRead`: a store value read again only once it is old enough, and not lost when a read fails."""

from __future__ import annotations

import pytest

from dolmen.platform.errors import StoreUnavailableError
from dolmen.platform.store.cached import CachedRead


def test_reads_again_only_after_its_interval_and_keeps_the_last_value_when_a_read_fails() -> None:
    reads: list[int] = []
    fail = False

    def read() -> int:
        if fail:
            raise StoreUnavailableError("the store cannot be reached")
        reads.append(len(reads) + 1)
        return reads[-1]

    every_minute = CachedRead(read, 0, every_s=60.0)
    assert every_minute.get() == 1 and every_minute.get() == 1
    assert reads == [1]  # the second get was answered from the cache

    always = CachedRead(read, 0, every_s=-1.0)
    assert always.get() == 2 and always.get() == 3
    fail = True
    with pytest.raises(StoreUnavailableError):
        always.get()
    fail = False
    assert always.get() == 4
