"""Execution ids: `E_<ulid>` for roots, `<parent>.<n>` for children.

A child's id is derived from its parent's id and the position of the request
in the parent's log, so replay computes the same id again. All ids of one
tree share the root's id, which is the Redis Cluster hash tag of their keys.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from .errors import InvalidNameError

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 26 Crockford digits hold 130 bits; a ULID has 128, so the first digit is 0-7.
_ID_RE = re.compile(r"^E_[0-7][0-9A-HJKMNP-TV-Z]{25}(?:\.[1-9][0-9]{0,8})*$")
MAX_CHILD_POSITION = 999_999_999


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
