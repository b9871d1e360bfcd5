"""A continue-as-new chain's head pointer: read by one GET, and never moved back."""

from __future__ import annotations

import redis

from dolmen.platform.store import chains, keys
from dolmen.platform.store.records import ExecutionState, Outcome, Status
from dolmen.platform.store.scripts import Scripts


def state(execution_id: str, *, continued_as: str | None = None, status: Status = "finished", **extra: str) -> ExecutionState:
    outcome = Outcome(continued_as=continued_as) if continued_as is not None else None
    return ExecutionState(execution_id, "t:p/i@1.0.0.f", "workflow", "sha256:x", status, 1, 1, 0, 0, [], outcome=outcome, extra=extra)


def test_the_head_is_used_only_when_it_is_past_the_reader() -> None:
    first, fifth = state("E_A"), state("E_E", chain="E_A", chain_index="5")
    assert chains.position(first) == ("E_A", 0) and chains.position(fifth) == ("E_A", 5)
    assert chains.ahead_of(first, b"5 E_E") == "E_E"
    assert chains.ahead_of(fifth, b"5 E_E") is None and chains.ahead_of(fifth, "4 E_D") is None
    assert chains.ahead_of(first, None) is None and chains.ahead_of(first, b"garbage") is None


def test_an_execution_that_did_not_continue_ends_its_chain() -> None:
    """An execution without a successor is its chain's end: there is nothing to read next, whatever the head says."""
    assert chains.continued_as(state("E_A")) is None
    assert chains.next_step(state("E_A"), b"5 E_E") is None


def test_the_next_read_jumps_to_the_head_and_falls_back_on_the_successor() -> None:
    """After a continued execution: the head's execution when it is past it (else none), then its own successor."""
    first = state("E_A", continued_as="E_B")
    assert chains.continued_as(first) == "E_B"
    assert chains.next_step(first, b"5 E_E") == chains.ChainStep(ahead="E_E", successor="E_B")
    assert chains.next_step(first, None) == chains.ChainStep(ahead=None, successor="E_B")
    fifth = state("E_E", continued_as="E_F", chain="E_A", chain_index="5")
    assert chains.next_step(fifth, "5 E_E") == chains.ChainStep(ahead=None, successor="E_F")  # the head is itself


def test_only_a_finished_execution_is_taken_as_reached() -> None:
    """A waiter takes a finished execution as it is, and waits for an unfinished one."""
    assert chains.settled(state("E_A")) and not chains.settled(state("E_A", status="running"))


def test_a_late_delivery_never_moves_the_head_back(client: redis.Redis) -> None:
    scripts = Scripts(client)
    head = keys.chain_head("E_CHAIN")
    client.delete(head)
    assert scripts("chain_head", [head], [3, "E_C", 60_000]) == 1
    assert scripts("chain_head", [head], [2, "E_B", 60_000]) == 0  # the sweep brought an older one late
    assert client.get(head) == b"3 E_C" and 0 < client.pttl(head) <= 60_000
    assert scripts("chain_head", [head], [4, "E_D", 60_000]) == 1 and client.get(head) == b"4 E_D"
    client.delete(head)
