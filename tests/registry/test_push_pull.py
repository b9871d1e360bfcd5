"""Push and pull components against a real docker-registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from oras.client import OrasClient

from dolmen.platform.errors import ComponentError, RegistryError, RegistryNotFoundError, RegistryUnavailableError, UsageError
from dolmen.registry.artifact import WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE
from dolmen.platform.wasm.cache import ComponentCache, sha256_digest
from dolmen.registry.client import RegistryClient
from dolmen.registry.index import ManifestIndex
from dolmen.registry.pull import fetch_component
from dolmen.registry.push import push_component
from dolmen.registry.reference import OciReference
from tests.registry.conftest import FAST_RETRY
from tests.support.registry import RegistryForTests, TamperingProxy, free_port

pytestmark = pytest.mark.registry


def _cached_files(cache: ComponentCache) -> list[Path]:
    folder = cache.root / "components" / "sha256"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_round_trip_keeps_the_bytes(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """A component pushed under a tag and pulled into another data dir has identical bytes and digests."""
    pushed = push_component(component_bytes, registry.ref(repo, "1.0.0"), cache)
    assert str(pushed.reference) == f"oci://{registry.host}/{repo}@{pushed.manifest_digest}"
    assert pushed.component_digest == sha256_digest(component_bytes)
    fetched = fetch_component(registry.ref(repo, "1.0.0"), other_cache, retry=FAST_RETRY)
    assert fetched.reference == pushed.reference
    assert (fetched.manifest_digest, fetched.component_digest) == (pushed.manifest_digest, pushed.component_digest)
    assert not fetched.cached
    assert other_cache.get(fetched.component_digest) == component_bytes
    assert other_cache.component_path(fetched.component_digest).is_file()


def test_digest_reference_pulls_the_same_component(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """Pulling by manifest digest gives the component the tag pointed to."""
    pushed = push_component(component_bytes, registry.ref(repo, "v1"), cache)
    fetched = fetch_component(str(pushed.reference), other_cache, retry=FAST_RETRY)
    assert fetched.component_digest == pushed.component_digest
    assert other_cache.get(fetched.component_digest) == component_bytes


def test_published_artifact_follows_the_wasm_layout(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache
) -> None:
    """The manifest has the Wasm config media type, one application/wasm layer, and a config naming the interfaces."""
    pushed = push_component(component_bytes, registry.ref(repo, "v1"), cache)
    base = f"http://{registry.host}/v2/{repo}"
    manifest = requests.get(
        f"{base}/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=5
    ).json()
    assert manifest["config"]["mediaType"] == WASM_CONFIG_MEDIA_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [WASM_LAYER_MEDIA_TYPE]
    assert manifest["layers"][0]["digest"] == pushed.component_digest
    config = requests.get(f"{base}/blobs/{manifest['config']['digest']}", timeout=5).json()
    assert config["architecture"] == "wasm" and config["os"] == "wasip2"
    assert config["layerDigests"] == [pushed.component_digest]
    assert config["component"] == {"exports": ["demo:calc/math@1.0.0"], "imports": ["demo:clock/ticker@1.0.0"]}
    assert config["created"].endswith("Z")


def test_pinned_reference_needs_no_network_once_pulled(
    own_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """After a pull, the digest-pinned reference resolves from the cache with the registry stopped."""
    pushed = push_component(component_bytes, own_registry.ref(repo, "v1"), cache)
    fetch_component(str(pushed.reference), other_cache, retry=FAST_RETRY)
    own_registry.stop()
    again = fetch_component(str(pushed.reference), other_cache, retry=FAST_RETRY)
    assert again.cached and again.component_digest == pushed.component_digest
    # The pusher's own cache resolves it offline too.
    assert fetch_component(pushed.reference, cache, retry=FAST_RETRY).cached
    # A tag must be resolved by the registry, which is down.
    with pytest.raises(RegistryUnavailableError, match=f"http://{own_registry.host}"):
        fetch_component(own_registry.ref(repo, "v1"), other_cache, retry=FAST_RETRY)


def test_tag_pull_of_a_cached_component_skips_the_blob(
    own_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache
) -> None:
    """A tag whose component is already cached fetches only the manifest."""
    push_component(component_bytes, own_registry.ref(repo, "v1"), cache)
    with TamperingProxy(own_registry.port) as proxy:
        fetched = fetch_component(f"oci://{proxy.host}/{repo}:v1", cache, retry=FAST_RETRY)
    assert fetched.cached
    assert [(m, "/blobs/" in p) for m, p, _ in proxy.requests] == [("GET", False)]


def test_missing_tag_is_not_found(registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache) -> None:
    """A tag that does not exist raises RegistryNotFoundError naming the repository and the tag."""
    push_component(component_bytes, registry.ref(repo, "v1"), cache)
    with pytest.raises(RegistryNotFoundError, match="has no tag 'v2'.*platform push") as info:
        fetch_component(registry.ref(repo, "v2"), cache, retry=FAST_RETRY)
    assert repo in str(info.value)
    with pytest.raises(RegistryNotFoundError, match="has no manifest sha256:0000"):
        fetch_component(f"oci://{registry.host}/{repo}@sha256:{'0' * 64}", cache, retry=FAST_RETRY)


def test_registry_down_is_unavailable_quickly(cache: ComponentCache) -> None:
    """A registry nobody listens for raises RegistryUnavailableError naming the address, after short retries."""
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match=rf"cannot reach the OCI registry at http://{address} after 3 attempts") as info:
        fetch_component(f"oci://{address}/demo/app:v1", cache, retry=FAST_RETRY)
    assert time.monotonic() - start < 5
    assert info.value.retryable
    assert "registry is running" in str(info.value)


def test_retries_ride_out_transient_5xx(
    own_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """Two 503 answers in a row are retried; a registry that keeps failing is reported unavailable."""
    push_component(component_bytes, own_registry.ref(repo, "v1"), cache)
    with TamperingProxy(own_registry.port) as proxy:
        proxy.fail_next(2, 503)
        fetched = fetch_component(f"oci://{proxy.host}/{repo}:v1", other_cache, retry=FAST_RETRY)
        assert other_cache.get(fetched.component_digest) == component_bytes
        assert [status for _, _, status in proxy.requests][:3] == [503, 503, 200]
        proxy.fail_next(10, 502)
        with pytest.raises(RegistryUnavailableError, match=r"kept failing .*HTTP 502"):
            fetch_component(f"oci://{proxy.host}/{repo}:v1", other_cache, retry=FAST_RETRY)


def test_non_wasm_artifact_is_refused(
    registry: RegistryForTests, repo: str, tmp_path: Path, cache: ComponentCache
) -> None:
    """An artifact pushed by plain oras (not the Wasm layout) is refused and nothing is cached."""
    payload = tmp_path / "notes.txt"
    payload.write_text("not a component")
    OrasClient(hostname=registry.host, insecure=True).push(
        target=f"{registry.host}/{repo}:v1", files=[str(payload)], disable_path_validation=True, quiet=True
    )
    with pytest.raises(RegistryError, match=r"is not a Wasm component artifact: its config media type is"):
        fetch_component(registry.ref(repo, "v1"), cache, retry=FAST_RETRY)
    assert _cached_files(cache) == []


def test_core_module_in_wasm_layout_is_refused(
    registry: RegistryForTests, repo: str, tmp_path: Path, cache: ComponentCache
) -> None:
    """A Wasm-layout artifact whose layer is a core module, not a component, is refused and not cached."""
    module = tmp_path / "core.wasm"
    module.write_bytes(b"\0asm\x01\x00\x00\x00")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architecture": "wasm", "os": "wasip1"}))
    OrasClient(hostname=registry.host, insecure=True).push(
        target=f"{registry.host}/{repo}:v1",
        files=[f"{module}:{WASM_LAYER_MEDIA_TYPE}"],
        manifest_config=f"{config}:{WASM_CONFIG_MEDIA_TYPE}",
        disable_path_validation=True,
        quiet=True,
    )
    with pytest.raises(RegistryError, match="core WebAssembly module, not a component"):
        fetch_component(registry.ref(repo, "v1"), cache, retry=FAST_RETRY)
    assert _cached_files(cache) == []
    assert not ManifestIndex(cache).root.exists() or list(ManifestIndex(cache).root.iterdir()) == []


def test_push_refuses_digest_references_and_non_components(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache
) -> None:
    """Pushing to a digest is a usage error; pushing bytes that are not a component is a component error."""
    with pytest.raises(UsageError, match="push to a tag"):
        push_component(component_bytes, f"oci://{registry.host}/{repo}@sha256:{'1' * 64}", cache)
    with pytest.raises(ComponentError, match="core WebAssembly module"):
        push_component(b"\0asm\x01\x00\x00\x00", registry.ref(repo, "v1"), cache)


def test_client_resolves_tags_to_digests(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache
) -> None:
    """`RegistryClient.resolve` answers the manifest digest a tag points to, with a HEAD request."""
    pushed = push_component(component_bytes, registry.ref(repo, "v1"), cache)
    with RegistryClient(registry.host, retry=FAST_RETRY) as client:
        assert client.resolve(OciReference.parse(registry.ref(repo, "v1"))) == pushed.manifest_digest
        assert client.resolve(pushed.reference) == pushed.manifest_digest


def test_pushing_again_moves_the_tag(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """Re-pushing a tag with a new timestamp gives a new manifest digest, and pulls follow the tag."""
    first = push_component(component_bytes, registry.ref(repo, "v1"), cache)
    from datetime import UTC, datetime

    second = push_component(component_bytes, registry.ref(repo, "v1"), cache, created=datetime(2030, 1, 1, tzinfo=UTC))
    assert first.manifest_digest != second.manifest_digest
    assert fetch_component(registry.ref(repo, "v1"), other_cache, retry=FAST_RETRY).manifest_digest == second.manifest_digest
