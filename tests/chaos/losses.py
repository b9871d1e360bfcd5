"""Writes a cluster lost on purpose: the replication stream a killed master had not passed on to the
replica that took its place (`FaultProxy.hold_replication`), and what that stream wrote.

Replication is asynchronous, so a master that dies ahead of its replica takes acknowledged writes
with it (README, "On a Valkey or Redis Cluster"). The chaos run kills one master so, knowing the
exact bytes lost, and the checks then excuse, in the trees those bytes wrote to and nowhere else,
the few outcomes only a lost write explains (see `verify` in checks.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A tree's keys carry its root id as their hash tag; an idempotency key is a bulk string of its own.
_TREE = re.compile(rb"dolmen:\{(E_[0-9A-Z]+)\}")
_IDEMPOTENCY = re.compile(rb"\$\d+\r\ndolmen:idem:([^\r]*)\r\n")


@dataclass
class LostWrites:
    """What the killed masters' replicas never got, by tree root and idempotency key."""

    roots: set[str] = field(default_factory=set)
    idempotency_keys: set[str] = field(default_factory=set)
    bytes: int = 0
    transactions: int = 0  # MULTI ... EXEC blocks: a script's writes, replicated as one
    streams: list[bytes] = field(default_factory=list)  # as the proxies held them (the report keeps them)

    def add(self, stream: bytes) -> None:
        """Note a replication stream that was lost."""
        self.streams.append(stream)
        self.bytes += len(stream)
        self.transactions += stream.count(b"\r\n$4\r\nEXEC\r\n")
        self.roots.update(m.decode() for m in _TREE.findall(stream))
        self.idempotency_keys.update(m.decode() for m in _IDEMPOTENCY.findall(stream))

    def touches(self, execution_id: str) -> bool:
        """Whether a lost write went to this execution's tree."""
        return execution_id.split(".", 1)[0] in self.roots

    def __str__(self) -> str:
        return (
            f"{self.bytes} bytes of replication stream ({self.transactions} transactions) in"
            f" {len(self.roots)} trees, {len(self.idempotency_keys)} idempotency keys"
        )
