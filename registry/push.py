"""Publish a component as a Wasm OCI artifact: config blob, component layer, manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..platform.errors import ConfigError, UsageError
from ..platform.wasm.engine import EngineSettings
from ..platform.wasm.loader import ComponentLoader
from .artifact import (
    OCI_MANIFEST_MEDIA_TYPE,
    TITLE_ANNOTATION,
    WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
    ComponentDescription,
    Descriptor,
    config_document,
    manifest_document,
    parse_wasm_manifest,
)
from .auth import Credentials
from ..platform.wasm.cache import ComponentCache, sha256_digest
from .client import RegistryClient
from .index import ManifestIndex
from .reference import OciReference
from .transport import RetryPolicy


@dataclass(frozen=True, slots=True)
class PushedComponent:
    """A published component: the digest-pinned reference, the tag it was pushed under, and its digests."""

    reference: OciReference
    tagged: OciReference
    manifest_digest: str
    component_digest: str
    size: int


def describe_component(data: bytes, cache: ComponentCache) -> ComponentDescription:
    """Load (and so validate and compile, once) a component; return its interface names.

    Raises `ComponentError` as `ComponentLoader.load_bytes` does.
    """
    loaded = ComponentLoader(cache, EngineSettings.for_kind("activity")).load_bytes(data)
    return ComponentDescription(
        exports=tuple(iface.name for iface in loaded.info.exports),
        imports=tuple(iface.name for iface in loaded.info.imports),
    )


def push_component(
    data: bytes,
    ref: OciReference | str,
    cache: ComponentCache,
    *,
    credentials: Credentials | None = None,
    insecure: bool = False,
    docker_config: Path | None = None,
    retry: RetryPolicy | None = None,
    created: datetime | None = None,
    title: str | None = None,
    description: ComponentDescription | None = None,
) -> PushedComponent:
    """Push `data` (a component) to `ref`'s tag and return the digest-pinned reference.

    The component is validated by loading it, unless `description` is given.
    `created` defaults to $SOURCE_DATE_EPOCH, else now; `title` names the layer
    (e.g. the file name). The component and its manifest are also cached, so the
    pinned reference resolves offline afterwards. Raises `UsageError` when
    `ref` is pinned to a digest, `ConfigError` for a SOURCE_DATE_EPOCH that is
    not a Unix time in seconds, `ComponentError` for bytes that do not load,
    and what `RegistryClient.push_blob` and `push_manifest` raise.
    """
    ref = OciReference.parse(ref) if isinstance(ref, str) else ref
    if ref.digest is not None:
        raise UsageError(
            f"cannot push to {ref}: a digest is computed from the content; push to a tag, "
            f"e.g. oci://{ref.host}/{ref.repository}:1.0.0"
        )
    if description is None:
        description = describe_component(data, cache)
    else:
        cache.put(data)
    moment = created or _build_time()
    component_digest = sha256_digest(data)
    config = config_document(component_digest, description, moment)
    with RegistryClient.for_reference(
        ref, credentials=credentials, insecure=insecure, docker_config=docker_config, retry=retry
    ) as client:
        config_desc = client.push_blob(ref, config, WASM_CONFIG_MEDIA_TYPE)
        layer_desc = client.push_blob(ref, data, WASM_LAYER_MEDIA_TYPE)
        if title:
            layer_desc = Descriptor(layer_desc.media_type, layer_desc.digest, layer_desc.size, ((TITLE_ANNOTATION, title),))
        manifest = manifest_document(config_desc, layer_desc, moment)
        manifest_digest = client.push_manifest(ref, manifest, OCI_MANIFEST_MEDIA_TYPE)
    pinned = ref.with_digest(manifest_digest)
    ManifestIndex(cache).put(parse_wasm_manifest(manifest, manifest_digest, source=str(pinned)))
    return PushedComponent(pinned, ref, manifest_digest, component_digest, len(data))


def _build_time() -> datetime:
    """Reproducible builds set SOURCE_DATE_EPOCH; everyone else gets the current time."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except (ValueError, OverflowError):
            raise ConfigError(f"SOURCE_DATE_EPOCH='{epoch}' is not a Unix timestamp; unset it or use seconds") from None
    return datetime.now(UTC)
