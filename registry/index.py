"""Verified manifests kept next to the component cache, so pinned references need no network.

Layout under the data directory:
  oci/manifests/sha256/<hex>.json    the manifest's exact bytes, as verified

A manifest digest names its bytes, and those bytes name the component layer's
digest, so `oci://host/repo@sha256:<manifest>` resolves offline once pulled.
Entries are re-verified on read; a damaged entry is dropped and re-fetched.
"""

from __future__ import annotations

from pathlib import Path

from ..platform.errors import DolmenError
from .artifact import WasmArtifact, parse_wasm_manifest
from ..platform.wasm.cache import ComponentCache, atomic_write, digest_hex, sha256_digest


class ManifestIndex:
    """Manifest digest -> verified Wasm artifact manifest, on disk.

    A malformed digest raises `IntegrityError` (`digest_hex`).
    """

    def __init__(self, cache: ComponentCache) -> None:
        self.cache = cache
        self.root = cache.root / "oci" / "manifests" / "sha256"

    def path(self, manifest_digest: str) -> Path:
        """Where the manifest with this digest (`sha256:<hex>`) is kept."""
        return self.root / f"{digest_hex(manifest_digest)}.json"

    def put(self, artifact: WasmArtifact) -> None:
        """Remember a manifest that was verified against its digest."""
        path = self.path(artifact.manifest_digest)
        if not path.is_file():
            atomic_write(path, artifact.manifest)

    def get(self, manifest_digest: str, *, source: str) -> WasmArtifact | None:
        """The remembered manifest, or None if absent or damaged (a damaged entry is removed)."""
        path = self.path(manifest_digest)
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        if sha256_digest(raw) != manifest_digest:
            path.unlink(missing_ok=True)
            return None
        try:
            return parse_wasm_manifest(raw, manifest_digest, source=source)
        except DolmenError:
            path.unlink(missing_ok=True)
            return None

    def component_digest(self, manifest_digest: str) -> str | None:
        """The component digest a cached manifest points to, if the component is cached too."""
        artifact = self.get(manifest_digest, source=manifest_digest)
        if artifact is None or not self.cache.has(artifact.layer.digest):
            return None
        return artifact.layer.digest
