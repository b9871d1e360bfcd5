"""Deploying components from a real OCI registry: pinned on deploy, refused when missing or tampered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dolmen.platform.deploy.pipeline import deploy
from dolmen.platform.deploy.spec import load_spec
from dolmen.platform.errors import DeploymentError
from dolmen.platform.store.connection import connect
from dolmen.registry.push import push_component
from tests.deploy.conftest import active_revision, write
from tests.support.guests import DATA_DIR, build_guest, component_cache
from tests.support.registry import RegistryForTests, registry_binary

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryForTests]:
    """A real docker-registry for this module."""
    if registry_binary() is None:
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry)")
    server = RegistryForTests(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_docker_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Docker config, so no developer credentials are used."""
    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))


def spec_text(act: str, wf: str) -> str:
    return (
        "name: oci\ncomponents:\n"
        f"  - {{name: act, kind: activity, source: \"{act}\"}}\n"
        f"  - {{name: wf, kind: workflow, source: \"{wf}\"}}\n"
    )


def run_deploy(redis_url: str, path: Path, data_dir: Path = DATA_DIR):  # type: ignore[no-untyped-def]
    client = connect(redis_url)
    try:
        return deploy(load_spec(path), client, data_dir)
    finally:
        client.close()


def push(registry: RegistryForTests, guest: tuple[str, str], repo: str, tag: str) -> str:
    data = build_guest(*guest).read_bytes()
    return push_component(data, registry.ref(repo, tag), component_cache()).component_digest


def test_oci_sources_are_pinned_to_digests(registry: RegistryForTests, redis_url: str, tmp_path: Path) -> None:
    """Tags resolve to manifest digests at deploy time; the revision records the pinned references."""
    act_digest = push(registry, ("act-basic", "activities"), "dolmen/act", "1.0.0")
    push(registry, ("wf-basic", "workflows"), "dolmen/wf", "1.0.0")
    path = write(tmp_path, "oci.yaml", spec_text(registry.ref("dolmen/act", "1.0.0"), registry.ref("dolmen/wf", "1.0.0")))
    result = run_deploy(redis_url, path)
    assert result.revision is not None
    act = result.revision.component("act")
    assert act is not None and act.digest == act_digest
    assert act.source.startswith(f"oci://{registry.host}/dolmen/act@sha256:")


def test_unresolvable_reference_changes_nothing(registry: RegistryForTests, redis_url: str, tmp_path: Path) -> None:
    """A tag the registry does not have is named with its line; the active revision stays."""
    push(registry, ("act-basic", "activities"), "dolmen/act", "1.0.0")
    push(registry, ("wf-basic", "workflows"), "dolmen/wf", "1.0.0")
    good = write(tmp_path, "good.yaml", spec_text(registry.ref("dolmen/act", "1.0.0"), registry.ref("dolmen/wf", "1.0.0")))
    run_deploy(redis_url, good)
    bad = write(tmp_path, "bad.yaml", spec_text(registry.ref("dolmen/act", "1.0.0"), registry.ref("dolmen/wf", "9.9.9")))
    with pytest.raises(DeploymentError) as caught:
        run_deploy(redis_url, bad)
    message = str(caught.value)
    assert "bad.yaml:4: components[1].source: component 'wf': cannot resolve the reference" in message
    assert "9.9.9" in message and "nothing was deployed" in message
    assert active_revision(redis_url) == (1, [1])


def test_tampered_blob_is_refused(registry: RegistryForTests, redis_url: str, tmp_path: Path) -> None:
    """A component whose bytes were altered in the registry fails verification and nothing is deployed."""
    digest = push(registry, ("act-basic", "activities"), "dolmen/tampered", "1.0.0")
    blob = registry.blob_path(digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    source = registry.ref("dolmen/tampered", "1.0.0")
    path = write(tmp_path, "t.yaml", f"name: oci\ncomponents:\n  - {{name: act, kind: activity, source: \"{source}\"}}\n")
    fresh = tmp_path / "fresh-data"  # a machine that never saw the genuine bytes
    with pytest.raises(DeploymentError) as caught:
        run_deploy(redis_url, path, fresh)
    message = str(caught.value)
    assert "t.yaml:3: components[0].source: component 'act': cannot resolve the reference" in message
    assert f"expected {digest}" in message
    assert active_revision(redis_url) == (None, [])
