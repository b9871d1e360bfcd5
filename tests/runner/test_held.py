"""`Held`: a call that returns while its request is being written waits for that write's answer."""

from __future__ import annotations

import threading
from typing import Any, cast

from dolmen.platform.runner.held import Held
from dolmen.platform.store.leases import Leases, PendingCommit


class _SlowLeases:
    """Stands in for `Leases.write_pending` only: blocks until released, then answers `entries`."""

    def __init__(self, entries: list[Any]) -> None:
        self.entries = entries
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_pending(self, pending: PendingCommit) -> list[Any]:
        self.entered.set()
        self.release.wait()
        return self.entries


def test_written_waits_for_the_write_not_just_its_claim() -> None:
    pending = cast(PendingCommit, type("P", (), {"last_seen": "0-0"})())
    held = Held(pending)
    leases = _SlowLeases([("1-0", {b"t": b"child_submitted"})])
    writer = threading.Thread(target=held.write, args=(cast(Leases, leases),))
    writer.start()
    assert leases.entered.wait(5)
    assert held.take() is None  # written by the other thread: the call must wait for it
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(held.written()))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive() and not got  # still writing: nothing to return yet
    leases.release.set()
    reader.join(5)
    writer.join(5)
    assert got == [leases.entries]
