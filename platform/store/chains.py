"""Where a continue-as-new chain is: each execution's place in it, and the chain's head pointer.

Following a chain one execution at a time from its first costs a read per
execution: seconds for a chain of tens of thousands. Every continuation
also moves a head pointer (`keys.chain_head(first)`, lua/chain_head.lua) to
itself, so a reader jumps to (near) the end in one read and follows the few
executions created since.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import ExecutionState

# How often a reader looks for the next execution of a chain that is not created yet (seconds).
POLL_S = 0.02


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


@dataclass(frozen=True, slots=True)
class ChainStep:
    """Where to read the execution that comes after one in its chain."""

    # The head's execution when the head is past the reader: read it first (one read however long the chain).
    ahead: str | None
    # The execution the reader continued as: created by the outbox a moment after the finish that names it,
    # so a reader that does not find it polls for it.
    successor: str


def continued_as(state: ExecutionState) -> str | None:
    """The execution `state` continued as; None when `state` is the end of its chain (it did not continue as new)."""
    return state.outcome.continued_as if state.outcome is not None else None


def next_step(state: ExecutionState, head: bytes | str | None) -> ChainStep | None:
    """What to read after `state` given the chain's head (`GET keys.chain_head(position(state)[0])`); None at the end.

    Pure: the sync and async stores (`ExecutionStore`, `AsyncExecutions`) both follow chains with it.
    """
    successor = continued_as(state)
    if successor is None:
        return None
    return ChainStep(ahead=ahead_of(state, head), successor=successor)


def settled(found: ExecutionState) -> bool:
    """Whether a waiter can take the execution it reached as it is; an unfinished one is waited for first."""
    return found.status == "finished"
