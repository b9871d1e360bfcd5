"""How a new execution starts: the outbox messages that queue (or time) it, index it, and link its chain.

Written by the script that creates the execution, in its tree's outbox
(see `outbox`); a top-level execution created from another tree travels as
one `create` message carrying these.
"""

from __future__ import annotations

import json

from . import outbox, retention
from .creates import NewExecution


def start_messages(new: NewExecution, at: int) -> list[str]:
    """A new execution's own outbox messages: queue it (or arm its recovery timer), index it.

    One that continues another as new takes that one's place in the `active` index.
    """
    index = outbox.index_msg(new.id, at, replaces=new.state_extra.get("continued_from"), tags=new.tags)
    starts = [*new.initial_messages(), index]
    chain = new.state_extra.get("chain")
    if chain:
        # Kept as long as the chain's newest execution: a day past its retention.
        ttl = int(new.state_extra.get(retention.RETENTION_FIELD) or retention.DEFAULT_RETENTION_MS) + 86_400_000
        starts.append(outbox.chain_msg(chain, int(new.state_extra["chain_index"]), new.id, ttl))
    return starts


def create_elsewhere(new: NewExecution, at: int, *, wid: str) -> str:
    """The outbox message that creates a top-level execution (its own tree) and starts it."""
    return outbox.create_msg(new.id, json.dumps(new.created_event()), new.state_fields(at), start_messages(new, at), wid=wid)
