"""Where a continue-as-new chain is: each execution's place in it, and the chain's head pointer.

Following a chain one execution at a time from its first costs a read per
execution: seconds for a chain of tens of thousands. Every continuation
also moves a head pointer (`keys.chain_head(first)`, lua/chain_head.lua) to
itself, so a reader jumps to (near) the end in one read and follows the few
executions created since.
"""

from __future__ import annotations

from .records import ExecutionState


def position(state: ExecutionState) -> tuple[str, int]:
    """(the chain's first execution, this one's index in it: 0 for the first)."""
    return state.extra.get("chain") or state.id, int(state.extra.get("chain_index") or 0)


def ahead_of(state: ExecutionState, head: bytes | str | None) -> str | None:
    """The head's execution id when the head (`GET keys.chain_head(first)`) is past `state`, else None."""
    if head is None:
        return None
    text = head.decode() if isinstance(head, bytes) else head
    index, _, execution_id = text.partition(" ")
    return execution_id if index.isdigit() and int(index) > position(state)[1] else None
