"""A continue-as-new chain's head pointer: read by one GET, and never moved back."""

from __future__ import annotations

import redis

from dolmen.platform.store import chains, keys
from dolmen.platform.store.records import ExecutionState
from dolmen.platform.store.scripts import Scripts


def state(execution_id: str, **extra: str) -> ExecutionState:
    return ExecutionState(execution_id, "t:p/i@1.0.0.f", "workflow", "sha256:x", "finished", 1, 1, 0, 0, [], extra=extra)


def test_the_head_is_used_only_when_it_is_past_the_reader() -> None:
    first, fifth = state("E_A"), state("E_E", chain="E_A", chain_index="5")
    assert chains.position(first) == ("E_A", 0) and chains.position(fifth) == ("E_A", 5)
    assert chains.ahead_of(first, b"5 E_E") == "E_E"
    assert chains.ahead_of(fifth, b"5 E_E") is None and chains.ahead_of(fifth, "4 E_D") is None
    assert chains.ahead_of(first, None) is None and chains.ahead_of(first, b"garbage") is None


def test_a_late_delivery_never_moves_the_head_back(client: redis.Redis) -> None:
    scripts = Scripts(client)
    head = keys.chain_head("E_CHAIN")
    client.delete(head)
    assert scripts("chain_head", [head], [3, "E_C", 60_000]) == 1
    assert scripts("chain_head", [head], [2, "E_B", 60_000]) == 0  # the sweep brought an older one late
    assert client.get(head) == b"3 E_C" and 0 < client.pttl(head) <= 60_000
    assert scripts("chain_head", [head], [4, "E_D", 60_000]) == 1 and client.get(head) == b"4 E_D"
    client.delete(head)
