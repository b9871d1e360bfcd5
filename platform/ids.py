"""Execution ids: `E_<ulid>` for roots, `<parent>.<n>` for children; workflow seeds.

A child's id is derived from its parent's id and the position of the request
in the parent's log, so replay computes the same id again. All ids of one
tree share the root's id, which is the Redis Cluster hash tag of their keys.
An execution a workflow schedules is not a child: it gets a new root id of
its own, which the workflow's `scheduled` event records for replay.

A workflow's randomness comes from a seed: 128 random bits written as 32
lowercase hex digits into its `created` event when it is created, so a fork
can copy it and draw the same numbers. Logs written before seeds were
recorded replay with the seed derived from the execution id, as they ran.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass

from .errors import InvalidNameError

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 26 Crockford digits hold 130 bits; a ULID has 128, so the first digit is 0-7.
_ID_RE = re.compile(r"^E_[0-7][0-9A-HJKMNP-TV-Z]{25}(?:\.[1-9][0-9]{0,8})*\Z")
MAX_CHILD_POSITION = 999_999_999
_SEED_RE = re.compile(r"^[0-9a-f]{32}\Z")


def new_ulid(now_ms: int | None = None, entropy: bytes | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = os.urandom(10) if entropy is None else entropy
    if not 0 <= ms < 2**48:
        raise ValueError(f"a ULID holds milliseconds from 0 to 2**48 - 1, got {ms}")
    if len(rand) != 10:
        raise ValueError(f"a ULID needs 10 bytes of entropy, got {len(rand)}")
    value = (ms << 80) | int.from_bytes(rand, "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


@dataclass(frozen=True, order=True, slots=True)
class ExecutionId:
    """An execution's id; `root` is the id of the tree it belongs to."""

    value: str

    @classmethod
    def new(cls) -> ExecutionId:
        """A fresh root id."""
        return cls(f"E_{new_ulid()}")

    @classmethod
    def parse(cls, text: str) -> ExecutionId:
        """Validate an id given by a user."""
        if not isinstance(text, str) or not _ID_RE.match(text):
            raise InvalidNameError(
                f"'{text}' is not an execution id; ids look like 'E_01JD8X3K5QZ6V2N4M7P9R0S1T2' "
                "or, for a child, 'E_01JD8X3K5QZ6V2N4M7P9R0S1T2.3'"
            )
        return cls(text)

    @property
    def root(self) -> str:
        """The root id of this execution's tree (the hash tag of its keys)."""
        return self.value.split(".", 1)[0]

    @property
    def parent(self) -> ExecutionId | None:
        """The parent's id, or None for a root execution."""
        head, dot, _ = self.value.rpartition(".")
        return ExecutionId(head) if dot else None

    def child(self, position: int) -> ExecutionId:
        """The id of the child requested as the `position`-th child (1-based)."""
        if not 1 <= position <= MAX_CHILD_POSITION:
            raise ValueError(f"child positions run from 1 to {MAX_CHILD_POSITION}, got {position}")
        return ExecutionId(f"{self.value}.{position}")

    @property
    def created_ms(self) -> int:
        """Milliseconds since the epoch encoded in the root's ULID."""
        value = 0
        for ch in self.root[2:12]:
            value = value * 32 + _CROCKFORD.index(ch)
        return value

    def __str__(self) -> str:
        return self.value


def new_seed() -> str:
    """A fresh workflow seed: 128 random bits as 32 lowercase hex digits."""
    return os.urandom(16).hex()


def seed_from_id(execution_id: str) -> str:
    """The seed of a workflow whose `created` event records none: the first 128 bits of sha256(id).

    It is what every workflow was seeded with before seeds were recorded, so
    their logs replay unchanged.
    """
    return hashlib.sha256(execution_id.encode()).digest()[:16].hex()


def seed_number(seed: str) -> int:
    """The PRNG seed for a recorded seed string.

    A well-formed seed is read as the 128-bit number it spells (so
    `seed_from_id` gives exactly the number older runs used); anything else a
    log might hold is hashed, which is deterministic too.
    """
    if _SEED_RE.match(seed):
        return int(seed, 16)
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:16], "big")
