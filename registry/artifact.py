"""The Wasm OCI artifact layout: building and checking manifests and config documents.

Follows the CNCF TAG Runtime "Wasm OCI Artifact" layout
(https://tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact/): an OCI
image manifest (https://github.com/opencontainers/image-spec/blob/main/manifest.md)
whose config has media type `application/vnd.wasm.config.v0+json` and whose
single layer, `application/wasm`, is the component's bytes. Everything here is
pure: bytes and values in, values or errors out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..platform.errors import IntegrityError, RegistryError
from ..platform.wasm.cache import sha256_digest

WASM_CONFIG_MEDIA_TYPE = "application/vnd.wasm.config.v0+json"
WASM_LAYER_MEDIA_TYPE = "application/wasm"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPTED_MANIFEST_TYPES = (OCI_MANIFEST_MEDIA_TYPE, OCI_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE)
TITLE_ANNOTATION = "org.opencontainers.image.title"
CREATED_ANNOTATION = "org.opencontainers.image.created"

# Registries refuse manifests over 4 MiB; components are bounded so a hostile
# manifest cannot make us buffer an unbounded download.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_COMPONENT_BYTES = 1024 * 1024 * 1024

_WASM_MAGIC = b"\0asm"
_COMPONENT_LAYER = b"\x0d\x00\x01\x00"  # version 0x0d, layer 1: a component
_CORE_MODULE = b"\x01\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class ComponentDescription:
    """The interface names a component exports and imports, as recorded in the config."""

    exports: tuple[str, ...]
    imports: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about one blob (`size` in bytes, `digest` `sha256:<hex>`).

    See https://github.com/opencontainers/image-spec/blob/main/descriptor.md.
    """

    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The descriptor as a manifest writes it: `mediaType`, `digest`, `size`, and `annotations` when any."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True, slots=True)
class WasmArtifact:
    """A verified Wasm component manifest: its digest, raw bytes, config and component layer."""

    manifest_digest: str
    manifest: bytes
    config: Descriptor
    layer: Descriptor


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys: the exact bytes that get digested and uploaded."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rfc3339(moment: datetime) -> str:
    """`2026-01-02T03:04:05Z` in UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def config_document(component_digest: str, description: ComponentDescription, created: datetime) -> bytes:
    """The `application/vnd.wasm.config.v0+json` document describing a component."""
    return canonical_json(
        {
            "created": rfc3339(created),
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [component_digest],
            "component": {"exports": list(description.exports), "imports": list(description.imports)},
        }
    )


def manifest_document(config: Descriptor, layer: Descriptor, created: datetime) -> bytes:
    """The OCI image manifest of a Wasm component artifact."""
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": config.to_json(),
            "layers": [layer.to_json()],
            "annotations": {CREATED_ANNOTATION: rfc3339(created)},
        }
    )


def parse_wasm_manifest(raw: bytes, manifest_digest: str, *, source: str) -> WasmArtifact:
    """Check that `raw` is a Wasm component artifact manifest and extract its descriptors.

    `raw` must already be verified against `manifest_digest`; `source` names the
    reference in messages. Raises `RegistryError` when it is not JSON, is an
    image index, has another schemaVersion than 2, another config media type,
    other than exactly one `application/wasm` layer, or a layer over
    `MAX_COMPONENT_BYTES`.
    """
    fix = "publish components with `platform push FILE.wasm oci://HOST/REPO:TAG`"
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RegistryError(f"{source}: the registry served a manifest that is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{source}: the manifest is not a JSON object")
    media_type = doc.get("mediaType")
    if media_type in (OCI_INDEX_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE) or "manifests" in doc:
        raise RegistryError(
            f"{source} is an image index (a multi-platform list), not a Wasm component artifact; {fix}"
        )
    if doc.get("schemaVersion") != 2:
        raise RegistryError(f"{source}: unsupported manifest schemaVersion {doc.get('schemaVersion')!r}; expected 2")
    config = _descriptor(doc.get("config"), source, "config")
    if config.media_type != WASM_CONFIG_MEDIA_TYPE:
        raise RegistryError(
            f"{source} is not a Wasm component artifact: its config media type is '{config.media_type}', "
            f"expected '{WASM_CONFIG_MEDIA_TYPE}'; {fix}"
        )
    layers_raw = doc.get("layers")
    if not isinstance(layers_raw, list):
        raise RegistryError(f"{source}: the manifest has no 'layers' list")
    layers = [_descriptor(item, source, f"layers[{i}]") for i, item in enumerate(layers_raw)]
    wasm = [layer for layer in layers if layer.media_type == WASM_LAYER_MEDIA_TYPE]
    if len(wasm) != 1 or len(layers) != 1:
        kinds = ", ".join(f"'{layer.media_type}'" for layer in layers) or "none"
        raise RegistryError(
            f"{source} is not a Wasm component artifact: expected exactly one '{WASM_LAYER_MEDIA_TYPE}' layer, "
            f"found layers: {kinds}; {fix}"
        )
    layer = wasm[0]
    if layer.size > MAX_COMPONENT_BYTES:
        raise RegistryError(
            f"{source}: the component layer declares {layer.size} bytes, over the {MAX_COMPONENT_BYTES} byte limit"
        )
    return WasmArtifact(manifest_digest=manifest_digest, manifest=raw, config=config, layer=layer)


def check_component_bytes(data: bytes, *, source: str) -> None:
    """Raise `RegistryError` for bytes that are not a WebAssembly component (a core module, or not Wasm at all).

    A component's preamble is `\\0asm`, version 0x0d and layer 1 (the component
    model's Binary.md); a core module's is version 1, layer 0.
    """
    if not data.startswith(_WASM_MAGIC):
        raise RegistryError(
            f"{source}: the 'application/wasm' layer is not WebAssembly (it does not start with \\0asm); "
            "push a component built for WASI 0.2"
        )
    version = data[4:8]
    if version == _CORE_MODULE:
        raise RegistryError(
            f"{source}: the layer is a core WebAssembly module, not a component; wrap it with "
            "`wasm-tools component new` and push the component"
        )
    if version != _COMPONENT_LAYER:
        raise RegistryError(
            f"{source}: the layer is not a WebAssembly component (unknown version/layer bytes {version.hex()}); "
            "push a component built for WASI 0.2"
        )


def verify_digest(data: bytes, expected: str, *, what: str) -> None:
    """Raise IntegrityError if `data` does not hash to `expected`."""
    actual = sha256_digest(data)
    if actual != expected:
        raise IntegrityError(
            f"{what} does not match its digest: expected {expected}, the registry served {actual} "
            f"({len(data)} bytes); refusing it, nothing was cached",
            expected=expected,
            actual=actual,
        )


def _descriptor(value: object, source: str, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise RegistryError(f"{source}: the manifest's {where} is not a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str) or not isinstance(size, int) or size < 0:
        raise RegistryError(f"{source}: the manifest's {where} needs a mediaType, a digest and a non-negative size")
    if not digest.startswith("sha256:") or len(digest) != 71 or any(c not in "0123456789abcdef" for c in digest[7:]):
        raise RegistryError(f"{source}: the manifest's {where} digest '{digest}' is not a sha256 digest")
    annotations = value.get("annotations") or {}
    pairs = tuple(sorted((str(k), str(v)) for k, v in annotations.items())) if isinstance(annotations, dict) else ()
    return Descriptor(media_type, digest, size, pairs)
