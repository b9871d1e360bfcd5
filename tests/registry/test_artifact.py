"""The Wasm OCI artifact layout: documents we write and manifests we accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dolmen.platform.errors import IntegrityError, RegistryError
from dolmen.registry.artifact import (
    OCI_MANIFEST_MEDIA_TYPE,
    WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
    ComponentDescription,
    Descriptor,
    check_component_bytes,
    config_document,
    manifest_document,
    parse_wasm_manifest,
    verify_digest,
)
from dolmen.platform.wasm.cache import sha256_digest

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LAYER = Descriptor(WASM_LAYER_MEDIA_TYPE, "sha256:" + "11" * 32, 100)
CONFIG = Descriptor(WASM_CONFIG_MEDIA_TYPE, "sha256:" + "22" * 32, 50)


def _manifest(**changes: object) -> bytes:
    doc = json.loads(manifest_document(CONFIG, LAYER, WHEN))
    doc.update(changes)
    return json.dumps(doc).encode()


def test_config_document_follows_the_cncf_layout() -> None:
    """The config records creation time, wasm/wasip2, the layer digest and interface names."""
    doc = json.loads(config_document(LAYER.digest, ComponentDescription(("a:b/c@1.0.0",), ("w:x/y",)), WHEN))
    assert doc == {
        "created": "2026-01-02T03:04:05Z",
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [LAYER.digest],
        "component": {"exports": ["a:b/c@1.0.0"], "imports": ["w:x/y"]},
    }


def test_written_manifest_parses_back() -> None:
    """A manifest we write is accepted and yields its config and layer descriptors."""
    raw = manifest_document(CONFIG, LAYER, WHEN)
    artifact = parse_wasm_manifest(raw, sha256_digest(raw), source="test")
    assert json.loads(raw)["mediaType"] == OCI_MANIFEST_MEDIA_TYPE
    assert (artifact.config, artifact.layer) == (CONFIG, LAYER)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (_manifest(config={**CONFIG.to_json(), "mediaType": "application/vnd.oci.image.config.v1+json"}),
         "config media type is 'application/vnd.oci.image.config.v1\\+json'"),
        (_manifest(layers=[]), "exactly one 'application/wasm' layer"),
        (_manifest(layers=[{**LAYER.to_json(), "mediaType": "application/vnd.oci.image.layer.v1.tar"}]),
         "found layers: 'application/vnd.oci.image.layer.v1.tar'"),
        (_manifest(layers=[LAYER.to_json(), LAYER.to_json()]), "exactly one"),
        (_manifest(layers=[{**LAYER.to_json(), "digest": "sha256:zz"}]), "not a sha256 digest"),
        (_manifest(layers=[{**LAYER.to_json(), "size": -1}]), "non-negative size"),
        (_manifest(schemaVersion=1), "schemaVersion"),
        (json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": []}).encode(), "image index"),
    ],
)  # fmt: skip
def test_non_component_manifests_are_refused(raw: bytes, fragment: str) -> None:
    """Manifests that are not a single-layer Wasm component artifact raise RegistryError saying why."""
    with pytest.raises(RegistryError, match=fragment):
        parse_wasm_manifest(raw, sha256_digest(raw), source="oci://h/r:t")


def test_component_bytes_check() -> None:
    """Component headers pass; core modules and non-Wasm bytes are refused with the fix."""
    check_component_bytes(b"\0asm\x0d\x00\x01\x00rest", source="s")
    with pytest.raises(RegistryError, match="core WebAssembly module"):
        check_component_bytes(b"\0asm\x01\x00\x00\x00", source="s")
    with pytest.raises(RegistryError, match="not WebAssembly"):
        check_component_bytes(b"PK\x03\x04", source="s")


def test_verify_digest_names_both_digests() -> None:
    """A digest mismatch is an IntegrityError naming the expected and served digests."""
    expected = sha256_digest(b"good")
    verify_digest(b"good", expected, what="blob")
    with pytest.raises(IntegrityError, match=f"expected {expected}, the registry served {sha256_digest(b'bad')}"):
        verify_digest(b"bad", expected, what="blob")
