"""The queues a runner reads: the active revision's functions, and an old revision's only while it has unfinished executions."""

from __future__ import annotations

import time

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig, Revision
from dolmen.platform.runner import queues
from dolmen.platform.runner.queues import QueueSelection
from dolmen.platform.store import garbage
from dolmen.platform.store.deployments import DeploymentStore, RevisionCache
from dolmen.platform.store.clock import now_ms
from dolmen.platform.wit.types import FunctionType
from tests.support.polling import wait_for

IFACE = "t:p/i@1.0.0"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def store(client: Client, digest: str, *functions: str) -> Revision:
    comp = ComponentConfig("c", "activity", digest, "test", {f"{IFACE}.{f}": FunctionType((), None) for f in functions})
    return client.deployments.put_revision(lambda n: Revision(n, "test", now_ms(), (comp,)))


def test_old_functions_are_read_while_their_revision_has_unfinished_executions(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """An old revision's own functions are read until its last execution finishes; its digest is reported gone once it is pruned."""
    monkeypatch.setattr(queues, "SCAN_EVERY_S", 0.05)
    store(client, D1, "old", "both")
    pending = client.submit(f"{IFACE}.old", []).execution_id  # no runner: unfinished on revision 1
    active = store(client, D2, "both", "new")
    deployments = DeploymentStore(client.redis)
    selection = QueueSelection(client.redis, deployments, RevisionCache(deployments))
    everything = [f"{IFACE}.both", f"{IFACE}.new", f"{IFACE}.old"]
    assert selection.select(active).names == everything  # not scanned yet: read
    time.sleep(0.3)
    assert selection.select(active).names == everything  # scanned: in use
    client.cancel(pending)
    wait_for(lambda: selection.select(active).names == [f"{IFACE}.both", f"{IFACE}.new"], timeout=10, what="the old function dropped")
    assert garbage.prune(client.redis, [1], 0) == [1]
    assert selection.select(active).gone == frozenset({D1})
    assert selection.select(active).gone == frozenset()


def test_revisions_sharing_the_active_functions_need_no_scan(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old revisions whose functions the active one also has are never scanned for: their queues are read anyway."""
    store(client, D1, "a", "b")
    active = store(client, D2, "a", "b", "c")
    deployments = DeploymentStore(client.redis)
    selection = QueueSelection(client.redis, deployments, RevisionCache(deployments))
    scans: list[object] = []
    monkeypatch.setattr(queues, "revisions_in_use", lambda *a: scans.append(a) or set())
    assert selection.select(active).names == [f"{IFACE}.a", f"{IFACE}.b", f"{IFACE}.c"]
    time.sleep(0.1)
    assert scans == []
