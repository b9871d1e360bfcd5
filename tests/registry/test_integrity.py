"""Tampered bytes are refused before anything uses or caches them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.errors import IntegrityError
from dolmen.platform.wasm.cache import ComponentCache
from dolmen.registry.index import ManifestIndex
from dolmen.registry.pull import fetch_component
from dolmen.registry.push import push_component
from tests.registry.conftest import FAST_RETRY
from tests.support.registry import RegistryForTests, TamperingProxy

pytestmark = pytest.mark.registry


def _nothing_cached(cache: ComponentCache) -> bool:
    components = cache.root / "components" / "sha256"
    manifests = ManifestIndex(cache).root
    return not any(p.is_file() for folder in (components, manifests) if folder.is_dir() for p in folder.iterdir())


def _flip_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def test_blob_corrupted_in_registry_storage_is_refused(
    own_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """A blob altered on the registry's disk (same size) fails verification and nothing lands in the cache."""
    pushed = push_component(component_bytes, own_registry.ref(repo, "v1"), cache)
    blob = own_registry.blob_path(pushed.component_digest)
    blob.write_bytes(_flip_byte(blob.read_bytes()))
    with pytest.raises(IntegrityError, match=rf"expected {pushed.component_digest}, the registry served sha256:"):
        fetch_component(own_registry.ref(repo, "v1"), other_cache, retry=FAST_RETRY)
    assert _nothing_cached(other_cache)
    # A digest-pinned reference is refused just the same.
    with pytest.raises(IntegrityError, match="nothing was cached"):
        fetch_component(str(pushed.reference), other_cache, retry=FAST_RETRY)
    assert _nothing_cached(other_cache)


def test_blob_grown_in_registry_storage_is_refused(
    own_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """A blob with bytes appended on the registry's disk is refused as larger than its manifest declares."""
    pushed = push_component(component_bytes, own_registry.ref(repo, "v1"), cache)
    blob = own_registry.blob_path(pushed.component_digest)
    blob.write_bytes(blob.read_bytes() + b"\0" * 4096)
    with pytest.raises(IntegrityError, match="larger than"):
        fetch_component(own_registry.ref(repo, "v1"), other_cache, retry=FAST_RETRY)
    assert _nothing_cached(other_cache)


def test_blob_altered_in_transit_is_refused(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """A proxy that flips a byte of the component blob on the wire is caught and nothing is cached."""
    pushed = push_component(component_bytes, registry.ref(repo, "v1"), cache)

    def corrupt(method: str, path: str, body: bytes) -> bytes:
        return _flip_byte(body) if path.endswith(f"/blobs/{pushed.component_digest}") else body

    with TamperingProxy(registry.port, rewrite=corrupt) as proxy:
        with pytest.raises(IntegrityError, match=f"blob {pushed.component_digest}"):
            fetch_component(f"oci://{proxy.host}/{repo}:v1", other_cache, retry=FAST_RETRY)
    assert _nothing_cached(other_cache)


def test_manifest_altered_in_transit_is_refused(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """A proxy that rewrites the manifest is caught for both digest and tag references."""
    pushed = push_component(component_bytes, registry.ref(repo, "v1"), cache)

    def swap_layer(method: str, path: str, body: bytes) -> bytes:
        if "/manifests/" in path:
            return body.replace(pushed.component_digest.encode(), b"sha256:" + b"e" * 64)
        return body

    with TamperingProxy(registry.port, rewrite=swap_layer) as proxy:
        pinned = f"oci://{proxy.host}/{repo}@{pushed.manifest_digest}"
        with pytest.raises(IntegrityError, match=f"the manifest of .* expected {pushed.manifest_digest}"):
            fetch_component(pinned, other_cache, retry=FAST_RETRY)
        # For a tag, the registry's Docker-Content-Digest header no longer matches the body.
        with pytest.raises(IntegrityError, match="the manifest of"):
            fetch_component(f"oci://{proxy.host}/{repo}:v1", other_cache, retry=FAST_RETRY)
    assert _nothing_cached(other_cache)


def test_damaged_local_index_entry_is_fetched_again(
    registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, tmp_path: Path
) -> None:
    """A cached manifest whose bytes no longer match its digest is dropped and fetched again."""
    pushed = push_component(component_bytes, registry.ref(repo, "v1"), cache)
    entry = ManifestIndex(cache).path(pushed.manifest_digest)
    entry.write_bytes(entry.read_bytes() + b" ")
    fetched = fetch_component(pushed.reference, cache, retry=FAST_RETRY)
    assert fetched.manifest_digest == pushed.manifest_digest
    assert ManifestIndex(cache).get(pushed.manifest_digest, source="test") is not None
