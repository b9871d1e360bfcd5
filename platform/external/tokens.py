"""The token an external worker holds for one claimed attempt: its lease, opaque to the worker.

It carries what the fenced writes need (the lease's owner and version, the
fencing token) and what the platform needs besides: the queue entry to ack
once the attempt settles, and when the attempt's timeout ends. A worker that
alters it only loses its lease: the store checks owner and version.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True, slots=True)
class TaskToken:
    """One claimed attempt of an external execution.

    `owner` and `version` are the lease's (the fencing token, see `store.leases`).
    """

    owner: str
    version: int
    # The queue entry the claim read (acked when the attempt settles; '' when none is known).
    entry_id: str
    # When the function's timeout ends this attempt (ms since the epoch); None: no timeout.
    deadline_ms: int | None
    # The lease's length as claimed (ms): what a heartbeat extends it by unless it says otherwise.
    lease_ms: int

    def encode(self) -> str:
        """The token as a worker holds it: base64url without padding (RFC 4648 §5) of compact JSON
        `{"o": owner, "v": version, "e": entry id, "d": deadline ms or null, "l": lease ms}`; `parse` reads it."""
        data = {"o": self.owner, "v": self.version, "e": self.entry_id, "d": self.deadline_ms, "l": self.lease_ms}
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, text: object) -> TaskToken:
        """The token a claim gave, or a `UsageError` (400) naming the field."""
        if not isinstance(text, str) or not text:
            raise UsageError("token: missing; send the lease's token from POST /v1/workers/claim", path="token")
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            deadline = data["d"]
            token = cls(str(data["o"]), int(data["v"]), str(data["e"]), None if deadline is None else int(deadline), int(data["l"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise UsageError(
                "token: not a token this platform gave; send the lease's token from POST /v1/workers/claim as it came",
                path="token",
            ) from None
        return token
