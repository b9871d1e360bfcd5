"""`platform gc`: old revisions and unneeded component bytes go; what running executions need stays, and runners follow."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import redis

from dolmen.platform.client import Client
from dolmen.platform.store import keys
from dolmen.platform.store.connection import connect
from dolmen.platform.wasm.engine import EngineSettings
from dolmen.platform.wasm.loader import ComponentLoader
from dolmen.platform.wasm.cache import ComponentCache, sha256_digest
from tests.deploy.conftest import F, Cli, Gate, active_revision, deployment, write
from tests.support.guests import DATA_DIR
from tests.support.platform import Processes
from tests.support.polling import wait_for
from tests.support import indexes

V2 = "testing:wf/flows@2.0.0"
ACT = "testing:act/basic@1.0.0"
WITH_V2 = "  - {name: wf-two, kind: workflow, source: ./build/wfv2.wasm}\n"
ONLY_V2 = (
    "name: test\ncomponents:\n"
    '  - {name: act, kind: activity, source: ./build/act.wasm, allowed_hosts: ["127.0.0.1:*"]}\n' + WITH_V2
)


def gc(cli: Cli, data_dir: Path, *args: str) -> Any:
    """`platform --json gc ARGS` with its own data directory (gc deletes the files of what it collects there)."""
    return cli.json("--data-dir", str(data_dir), "gc", *args)


def digest_of(path: Path) -> str:
    return sha256_digest(path.read_bytes())


def blobs(redis_url: str) -> set[str]:
    """The digests whose bytes are in Redis."""
    client = connect(redis_url)
    try:
        return {k.decode()[len(keys.BLOB_PREFIX) :] for k in client.scan_iter(match=f"{keys.BLOB_PREFIX}*")}
    finally:
        client.close()


def private_data_dir(root: Path, components: dict[Path, str]) -> Path:
    """A data directory holding hard links to the shared cache's files of these components (file -> kind).

    Runners and gc delete the files of components that left the deployment: these
    tests must not delete the shared ones.
    """
    for path, kind in components.items():
        # Compiled into the shared cache first (once), so the runners need not compile.
        ComponentLoader(ComponentCache(DATA_DIR), EngineSettings.for_kind(kind)).load_file(path)  # type: ignore[arg-type]
        hexpart = digest_of(path).split(":")[1]
        for source in [DATA_DIR / "components" / "sha256" / hexpart, *DATA_DIR.glob(f"compiled/*/{hexpart}.*")]:
            target = root / source.relative_to(DATA_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
    return root


def local_files(data_dir: Path, digest: str) -> list[Path]:
    hexpart = digest.split(":")[1]
    return [p for p in [data_dir / "components" / "sha256" / hexpart, *data_dir.glob(f"compiled/*/{hexpart}.*")] if p.exists()]


def test_gc_prunes_revisions_and_collects_components_nothing_needs(workdir: Path, cli: Cli, client: Client, tmp_path: Path) -> None:
    """Beyond --keep, revisions go unless active or named by unfinished executions; so do the bytes only they named."""
    build = workdir / "build"
    act, wf1, wf2, wfv2 = (digest_of(build / n) for n in ("act.wasm", "wf1.wasm", "wf2.wasm", "wfv2.wasm"))
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    pending = client.submit(f"{ACT}.double", [2]).execution_id  # no runner: stays unfinished on revision 1
    cli.json("deploy", str(write(workdir, "v2.yaml", deployment("wf2", wf_settings="upgrade: pinned"))))
    cli.json("deploy", str(write(workdir, "v3.yaml", ONLY_V2)))
    own = tmp_path / "gc-data"
    ComponentCache(own).put((build / "wf2.wasm").read_bytes())  # a local copy gc removes with the bytes in Redis
    before = (active_revision(cli.redis_url), blobs(cli.redis_url))
    assert before[1] == {act, wf1, wf2, wfv2}

    dry = cli("--data-dir", str(own), "gc", "--dry-run", "--keep", "0", "--grace", "0")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 1 revision and 1 component, freeing" in dry.stdout
    assert (active_revision(cli.redis_url), blobs(cli.redis_url)) == before
    assert local_files(own, wf2)

    report = gc(cli, own, "--keep", "0", "--grace", "0")
    assert report["pruned"] == [2] and report["collected"] == [wf2]
    assert report["bytes_freed"] == (build / "wf2.wasm").stat().st_size and report["local_bytes_freed"] > 0
    why = {r["revision"]: r["reasons"] for r in report["revisions"]}
    assert why == {3: ["active"], 2: [], 1: ["1 unfinished execution"]}
    kept = {c["digest"]: c["reasons"] for c in report["components"] if c["kept"]}
    assert kept == {act: ["in revisions 1, 3", "1 unfinished execution"], wf1: ["in revision 1"], wfv2: ["in revision 3"]}
    assert active_revision(cli.redis_url) == (3, [1, 3]) and blobs(cli.redis_url) == {act, wf1, wfv2}
    assert not local_files(own, wf2)

    client.cancel(pending)
    wait_for(lambda: client.get(pending).status == "finished", timeout=30, what="the cancelled execution to finish")
    again = gc(cli, own, "--keep", "0", "--grace", "0")
    assert again["pruned"] == [1] and again["collected"] == [wf1]
    assert active_revision(cli.redis_url) == (3, [3]) and blobs(cli.redis_url) == {act, wfv2}
    # With the default grace, the revision a deploy just replaced stays.
    cli.json("deploy", str(write(workdir, "v4.yaml", deployment("wf1"))))
    assert gc(cli, own, "--keep", "0")["pruned"] == [] and active_revision(cli.redis_url) == (4, [3, 4])


def test_runner_reads_old_queues_only_while_they_have_work(
    workdir: Path, cli: Cli, processes: Processes, client: Client, gate: Gate, tmp_path: Path
) -> None:
    """An old revision's executions finish on its pinned component, then its queues are no longer read and gc takes it."""
    build = workdir / "build"
    wf1 = digest_of(build / "wf1.wasm")
    processes.data_dir = private_data_dir(
        tmp_path / "runner-data", {build / "act.wasm": "activity", build / "wf1.wasm": "workflow", build / "wfv2.wasm": "workflow"}
    )
    cli.json("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    processes.fleet("r1", concurrency=8)
    ids = [client.submit(f"{F}.fetch-all", [[gate.url(f"hold-{i}")]]).execution_id for i in range(2)]
    wait_for(lambda: gate.waiting == 2, timeout=60, what="2 held requests")
    cli.json("deploy", str(write(workdir, "v2.yaml", ONLY_V2)))
    queues = connect(cli.redis_url)
    try:
        # Revision 1 still has unfinished executions: gc keeps it and its component, the runner reads its queues.
        report = gc(cli, tmp_path / "gc-data", "--keep", "0", "--grace", "0")
        assert report["pruned"] == [] and report["collected"] == []
        assert wf1 in blobs(cli.redis_url)
        wait_for(lambda: idle_ms(queues, f"{F}.fetch-all", "r1") < 1500, timeout=20, what="the runner reading the old queue")
        gate.open()
        for i, execution_id in enumerate(ids):
            state = client.wait(execution_id, 120)
            assert state.status == "finished" and state.digest == wf1
            assert state.outcome is not None and state.outcome.value == [{"ok": f"page hold-{i}"}]
        # No work left on revision 1: its queues are left alone, the new ones still read.
        wait_for(lambda: idle_ms(queues, f"{F}.fetch-all", "r1") > 3000, timeout=30, what="the runner leaving the old queue")
        assert idle_ms(queues, f"{F}.serial", "r1") > 3000
        assert cli("call", f"{V2}.serial", "[2]").stdout.strip() == '"v2:6"'
        assert idle_ms(queues, f"{V2}.serial", "r1") < 3000
        report = gc(cli, tmp_path / "gc-data", "--keep", "0", "--grace", "0")
        assert report["pruned"] == [1] and report["collected"] == [wf1]
        # The runner drops the component's files from its data directory too.
        wait_for(lambda: not local_files(processes.data_dir, wf1), timeout=30, what="the runner to remove wf1's files")
        assert local_files(processes.data_dir, digest_of(build / "wfv2.wasm"))
        assert cli("call", f"{V2}.serial", "[3]").stdout.strip() == '"v2:12"'
    finally:
        queues.close()


def idle_ms(client: redis.Redis, ffqn: str, consumer: str) -> int:
    """How long ago `consumer` last read (or tried to read) the queue of `ffqn`; a large number if never."""
    consumers = []
    for stream in indexes.shards_of(client).queues(ffqn):
        try:
            consumers += client.xinfo_consumers(stream, keys.QUEUE_GROUP)
        except redis.ResponseError:
            pass
    for entry in consumers:
        if entry["name"] == consumer.encode():
            return int(entry["idle"])
    return 10**9


def test_gc_refuses_a_grace_without_a_unit(cli: Cli, tmp_path: Path) -> None:
    """`--grace 5` could mean 5 ms or 5 minutes: refused like a unitless duration in the YAML; 0 and 5ms are taken."""
    bad = cli("--data-dir", str(tmp_path), "gc", "--dry-run", "--grace", "5")
    assert bad.returncode == 2 and "'5' has no unit; write e.g. 30s, 5m or 1h" in bad.stderr
    for grace in ("0", "5ms", "2m"):
        ok = cli("--data-dir", str(tmp_path), "gc", "--dry-run", "--grace", grace)
        assert ok.returncode == 0, ok.stderr
