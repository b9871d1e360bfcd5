"""The upgrade driver and its checked writes against a real Valkey, without runner processes."""

from __future__ import annotations

import json
from pathlib import Path

from dolmen.platform.client import Client
from dolmen.platform.deploy.pipeline import deploy
from dolmen.platform.deploy.spec import load_spec
from dolmen.platform.deploy.upgrade_decisions import FunctionChange
from dolmen.platform.deploy.upgrade_checks import PendingUpgrades, Upgrader
from dolmen.platform.store.connection import connect
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.repins import UpgradeStore
from tests.deploy.conftest import F, deployment, write
from tests.support.guests import DATA_DIR

SERIAL = f"{F}.serial"


def deploy_yaml(redis_url: str, path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    client = connect(redis_url)
    try:
        return deploy(load_spec(path), client, DATA_DIR, **kwargs)  # type: ignore[arg-type]
    finally:
        client.close()


def serial_report(result) -> object:  # type: ignore[no-untyped-def]
    (report,) = [r for r in result.upgrades if r.change.ffqn == SERIAL]
    return report


def test_locked_executions_are_queued_and_finished_by_pending_upgrades(workdir: Path, redis_url: str, client: Client) -> None:
    """A pending execution moves at deploy time; a locked one is queued and moved once its lock is released."""
    deploy_yaml(redis_url, write(workdir, "v1.yaml", deployment("wf1")))
    free, held = (client.submit(SERIAL, [2]).execution_id for _ in range(2))
    leases = Leases(client.redis)
    lease = leases.lock(held, "test-runner", 60_000)
    assert isinstance(lease, Lease)
    result = deploy_yaml(redis_url, write(workdir, "v2.yaml", deployment("wf2")), upgrade_wait_s=0.3)
    outcomes = {e.execution_id: e.outcome for e in serial_report(result).executions}  # type: ignore[attr-defined]
    assert outcomes == {free: "upgraded", held: "queued"}
    store = UpgradeStore(client.redis)
    assert store.pending() >= 1
    pending = PendingUpgrades(client.redis, DATA_DIR)
    _expire_not_before(store)
    pending.work()
    assert client.get(held).digest != client.get(free).digest, "still locked: not moved"
    assert leases.block(lease, len(client.executions.events(held))) == "blocked"
    while store.pending():
        pending.work()
    assert client.get(held).digest == client.get(free).digest
    assert [e.type for e in client.executions.events(held)].count("upgraded") == 1


def _expire_not_before(store: UpgradeStore) -> None:
    """Make queued requests due now (they wait a second after being queued)."""
    raw = [store.rotate() for _ in range(store.pending())]
    for item in raw:
        assert item is not None
        store.remove(item)
        request = json.loads(item)
        request["not_before"] = 0
        store.add_request(request)


def test_superseded_requests_are_dropped(workdir: Path, redis_url: str, client: Client) -> None:
    """A queued upgrade to a digest that a later deployment replaced is dropped, not carried out."""
    deploy_yaml(redis_url, write(workdir, "v1.yaml", deployment("wf1")))
    result = deploy_yaml(redis_url, write(workdir, "v2.yaml", deployment("wf2")))
    store = UpgradeStore(client.redis)
    assert store.pending() == len(result.upgrades)  # follow-up passes, one per changed ffqn
    execution_id = client.submit(SERIAL, [1]).execution_id
    deploy_yaml(redis_url, workdir / "v1.yaml")  # back to v1: the queued moves to v2 are stale
    _expire_not_before(store)
    v1_digest = client.get(execution_id).digest
    PendingUpgrades(client.redis, DATA_DIR).work()
    remaining = [r["change"]["to_digest"] for r in store.requests()]
    assert all(d == v1_digest for d in remaining)
    assert client.get(execution_id).digest == v1_digest


def test_repin_refuses_moved_and_grown_executions(workdir: Path, redis_url: str, client: Client) -> None:
    """The checked write says why it wrote nothing: the execution is on another digest, or its log grew."""
    deploy_yaml(redis_url, write(workdir, "v1.yaml", deployment("wf1")))
    execution_id = client.submit(SERIAL, [1]).execution_id
    digest = client.get(execution_id).digest
    store = UpgradeStore(client.redis)

    def repin(from_digest: str, length: int) -> str:
        return store.repin(
            execution_id, from_digest=from_digest, to_digest="sha256:" + "0" * 64, seen_length=length,
            event_type="upgraded", data={}, revision=None, component="wf",
        )

    assert repin("sha256:" + "1" * 64, 1) == "moved"
    assert repin(digest, 5) == "grew"
    assert client.get(execution_id).digest == digest and len(client.executions.events(execution_id)) == 1


def test_dry_run_of_an_upgrade_writes_nothing(workdir: Path, redis_url: str, client: Client) -> None:
    """Upgrader.upgrade(dry_run=True) verifies and reports but appends no event and queues nothing."""
    v1 = deploy_yaml(redis_url, write(workdir, "v1.yaml", deployment("wf1")))
    v2 = deploy_yaml(redis_url, write(workdir, "v2.yaml", deployment("wf2")), dry_run=True)
    (wf2,) = [c for c in v2.plan.components if c.config.name == "wf"]
    execution_id = client.submit(SERIAL, [3]).execution_id
    store = UpgradeStore(client.redis)
    before = store.pending()
    upgrader = Upgrader(client.redis, DATA_DIR)
    try:
        change = FunctionChange(SERIAL, wf2.config.digest, "wf", "verified", v1.revision.number)
        report = upgrader.upgrade(change, dry_run=True)
    finally:
        upgrader.close()
    assert [(e.execution_id, e.outcome) for e in report.executions] == [(execution_id, "would-upgrade")]
    assert len(client.executions.events(execution_id)) == 1 and store.pending() == before
