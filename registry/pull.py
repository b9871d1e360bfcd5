"""Resolve an `oci://` reference to a verified, cached component: what `platform deploy` calls.

Order of trust: the manifest is checked against the digest asked for (or the
one the registry announces for a tag), the layer against the digest in that
manifest, and only then is anything written to the cache. A digest-pinned
reference already pulled is answered from disk without any network access.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..platform.errors import RegistryError
from .artifact import check_component_bytes
from .auth import Credentials
from ..platform.wasm.cache import ComponentCache
from .client import RegistryClient
from .index import ManifestIndex
from .reference import OciReference
from .transport import RetryPolicy


@dataclass(frozen=True, slots=True)
class FetchedComponent:
    """A component resolved from a registry and present in the cache.

    `reference` is pinned to `manifest_digest`; `component_digest` is the key of
    the bytes in `ComponentCache`. `cached` is true when no blob was downloaded
    (and, for a pinned reference, no request was made at all).
    """

    reference: OciReference
    manifest_digest: str
    component_digest: str
    size: int
    cached: bool


def fetch_component(
    ref: OciReference | str,
    cache: ComponentCache,
    *,
    credentials: Credentials | None = None,
    insecure: bool = False,
    docker_config: Path | None = None,
    retry: RetryPolicy | None = None,
    client: RegistryClient | None = None,
) -> FetchedComponent:
    """Resolve `ref` to a manifest digest, download and verify its component, and cache it.

    `credentials` default to the Docker config's for the host, then anonymous.
    Pass `client` to reuse one connection for several references of one registry
    (`RegistryError` when it talks to another host). A string `ref` that does
    not parse raises `InvalidNameError`; otherwise it raises what
    `RegistryClient.get_manifest` and `get_blob` raise, and `RegistryError`
    when the layer is not a component (`check_component_bytes`).
    """
    ref = OciReference.parse(ref) if isinstance(ref, str) else ref
    index = ManifestIndex(cache)
    if ref.digest is not None:
        known = index.get(ref.digest, source=str(ref))
        if known is not None and cache.has(known.layer.digest):
            return FetchedComponent(ref.with_digest(ref.digest), ref.digest, known.layer.digest, known.layer.size, True)
    if client is None:
        with RegistryClient.for_reference(
            ref, credentials=credentials, insecure=insecure, docker_config=docker_config, retry=retry
        ) as own:
            return _fetch(own, ref, cache, index)
    if client.host != ref.host:
        raise RegistryError(f"{ref} is on {ref.host}, but the client given talks to {client.host}")
    return _fetch(client, ref, cache, index)


def _fetch(client: RegistryClient, ref: OciReference, cache: ComponentCache, index: ManifestIndex) -> FetchedComponent:
    artifact = client.get_manifest(ref)
    pinned = ref.with_digest(artifact.manifest_digest)
    layer = artifact.layer
    cached = cache.has(layer.digest)
    if not cached:
        data = client.get_blob(ref, layer)  # verified against layer.digest and layer.size
        check_component_bytes(data, source=str(pinned))
        cache.put(data, expected_digest=layer.digest)
    index.put(artifact)
    return FetchedComponent(pinned, artifact.manifest_digest, layer.digest, layer.size, cached)


def export_component(cache: ComponentCache, fetched: FetchedComponent, output: Path) -> Path:
    """Write a fetched component's bytes (re-verified by the cache) to `output`, atomically.

    Raises what `ComponentCache.get` raises (`NotFoundError`, `IntegrityError`)
    and `RegistryError` when `output` cannot be written.
    """
    data = cache.get(fetched.component_digest)
    output = Path(output)
    folder = output.parent if str(output.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, output)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise RegistryError(f"cannot write the component to '{output}': {exc.strerror or exc}") from None
    return output
