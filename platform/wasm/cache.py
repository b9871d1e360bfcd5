"""Content-addressed storage of component bytes and their compiled artifacts.

Layout under the data directory:
  components/sha256/<hex>                     the component, verified bytes
  compiled/<engine-key>/<hex>.cwasm           wasmtime's serialized artifact

Files are written to a temporary name and renamed, so readers never see a
partial file and concurrent writers of the same digest are harmless.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import IntegrityError, NotFoundError


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    """The hex part of a `sha256:<hex>` digest; `IntegrityError` unless it is `sha256:` and 64 lowercase hex digits."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise IntegrityError(f"'{digest}' is not a sha256 digest; expected 'sha256:' and 64 lowercase hex digits")
    return hexpart


class ComponentCache:
    """Component bytes and compiled artifacts under `root`, keyed by digest (`sha256:<hex>`; layout above).

    Every method taking a digest raises `IntegrityError` for a malformed one (`digest_hex`).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def component_path(self, digest: str) -> Path:
        """Where the component's bytes are (or would be) kept."""
        return self.root / "components" / "sha256" / digest_hex(digest)

    def compiled_path(self, digest: str, engine_key: str) -> Path:
        """Where its compiled artifact for `engine_key` (`EngineSettings.cache_key`) is (or would be) kept."""
        return self.root / "compiled" / engine_key / f"{digest_hex(digest)}.cwasm"

    def has(self, digest: str) -> bool:
        """Whether the component's bytes are in the cache (not verified: `get` does that)."""
        return self.component_path(digest).is_file()

    def put(self, data: bytes, expected_digest: str | None = None) -> str:
        """Store bytes and return their digest; `IntegrityError` (nothing stored) if it is not `expected_digest`."""
        digest = sha256_digest(data)
        if expected_digest is not None and digest != expected_digest:
            raise IntegrityError(
                f"content does not match its digest: expected {expected_digest}, got {digest}; "
                "the source served tampered or truncated bytes, nothing was cached"
            )
        path = self.component_path(digest)
        if not path.is_file():
            atomic_write(path, data)
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes of a cached component, re-verified against the digest.

        Raises `NotFoundError` when they are not cached, `IntegrityError` (and
        removes the file) when they no longer match.
        """
        path = self.component_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"component {digest} is not in the cache at {self.root}; pull or deploy it first"
            ) from None
        if sha256_digest(data) != digest:
            path.unlink(missing_ok=True)
            raise IntegrityError(
                f"cached component {digest} was corrupted on disk and has been removed; pull it again"
            )
        return data

    def put_compiled(self, digest: str, engine_key: str, artifact: bytes) -> Path:
        """Store wasmtime's serialized artifact (`Component.serialize()`); returns its path. OSError as writing raises."""
        path = self.compiled_path(digest, engine_key)
        atomic_write(path, artifact)
        return path

    def discard(self, digest: str) -> int:
        """Remove a component's bytes and its compiled artifacts (for every engine key); returns the bytes freed."""
        hexpart = digest_hex(digest)
        freed = 0
        for path in [self.component_path(digest), *(self.root / "compiled").glob(f"*/{hexpart}.*")]:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            freed += size
        return freed


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
