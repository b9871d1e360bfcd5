"""`RegistryClient`: manifests and blobs of one OCI registry, verified against their digests.

Transport (scheme, retries, auth) comes from `transport.OrasSession`; this
module adds the distribution API calls (the OCI distribution spec's pull and
push endpoints, https://github.com/opencontainers/distribution-spec/blob/main/spec.md)
and the checks that make what we read trustworthy: a manifest must hash to
the digest asked for (or the one the registry announces), a blob to the
digest its manifest names.

Every call may raise what `OrasSession.do_request` and `OrasSession.check`
raise: `RegistryUnavailableError` (unreachable, or 5xx/429 after the
retries), `RegistryAuthError` (401/403), `RegistryError` (TLS, another
refusal); the docstrings below name the rest.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import oras.utils
import requests
from oras.container import Container

from ..platform.errors import IntegrityError, RegistryError, RegistryNotFoundError
from .artifact import (
    ACCEPTED_MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    Descriptor,
    WasmArtifact,
    parse_wasm_manifest,
    verify_digest,
)
from .auth import Credentials, resolve_credentials
from ..platform.wasm.cache import sha256_digest
from .reference import OciReference, host_is_loopback
from .transport import OrasSession, RetryPolicy, registry_error_codes

_CHUNK = 1024 * 1024


class RegistryClient:
    """One registry host: resolve tags, read verified manifests and blobs, upload them.

    Plain HTTP is used for loopback hosts or when `insecure` is true, HTTPS otherwise.
    Use as a context manager, or call `close()`.
    """

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.host = host
        scheme = "http" if insecure or host_is_loopback(host) else "https"
        self._session = OrasSession(host, scheme=scheme, credentials=credentials, retry=retry or RetryPolicy())

    @classmethod
    def for_reference(
        cls,
        ref: OciReference,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        docker_config: Path | None = None,
        retry: RetryPolicy | None = None,
    ) -> RegistryClient:
        """A client for `ref`'s registry, with explicit credentials or those of the Docker config (`ConfigError` as
        `auth.resolve_credentials`)."""
        creds = resolve_credentials(ref.host, credentials, config_path=docker_config)
        return cls(ref.host, credentials=creds, insecure=insecure, retry=retry)

    @property
    def base_url(self) -> str:
        """`scheme://host`, as messages show it."""
        return self._session.base_url

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self._session.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------

    def resolve(self, ref: OciReference) -> str:
        """The manifest digest `ref` names now (a tag is looked up; a digest is checked to exist).

        Raises `RegistryNotFoundError` when the repository, tag or digest does
        not exist, `IntegrityError` when the registry announces another digest
        than the one asked for, and what `get_manifest` raises when it announces none.
        """
        url = self._manifest_url(ref)
        response = self._session.do_request(url, "HEAD", headers={"Accept": ", ".join(ACCEPTED_MANIFEST_TYPES)})
        with response:
            self._check_manifest_response(response, ref, "pull")
            announced = response.headers.get("Docker-Content-Digest")
        if announced and announced.startswith("sha256:"):
            if ref.digest is not None and announced != ref.digest:
                raise IntegrityError(f"{ref}: the registry announced manifest {announced} for digest {ref.digest}")
            return announced
        return self.get_manifest(ref).manifest_digest

    def get_manifest(self, ref: OciReference) -> WasmArtifact:
        """Fetch `ref`'s manifest, verify its digest, and check it is a Wasm component artifact.

        Raises `RegistryNotFoundError` when it does not exist, `IntegrityError`
        when its bytes do not hash to the digest asked for (or announced) or
        exceed `MAX_MANIFEST_BYTES`, `RegistryError` as `parse_wasm_manifest`.
        """
        url = self._manifest_url(ref)
        response = self._session.do_request(
            url, "GET", headers={"Accept": ", ".join(ACCEPTED_MANIFEST_TYPES)}, stream=True
        )
        with response:
            self._check_manifest_response(response, ref, "pull")
            raw = self._read_bounded(response, MAX_MANIFEST_BYTES, f"the manifest of {ref}")
            announced = response.headers.get("Docker-Content-Digest")
        actual = sha256_digest(raw)
        expected = ref.digest or (announced if announced and announced.startswith("sha256:") else None)
        if expected is not None and actual != expected:
            raise IntegrityError(
                f"the manifest of {ref} does not match its digest: expected {expected}, the registry served "
                f"{actual}; refusing it, nothing was cached",
                expected=expected,
                actual=actual,
            )
        return parse_wasm_manifest(raw, actual, source=str(ref.with_digest(actual)))

    def get_blob(self, ref: OciReference, descriptor: Descriptor) -> bytes:
        """Download a blob of `ref`'s repository and verify it against `descriptor` (size and digest).

        Raises `RegistryNotFoundError` when the registry does not have it,
        `IntegrityError` when its size or digest differs.
        """
        what = f"blob {descriptor.digest} of {ref}"
        response = self._session.get_blob(self._container(ref), descriptor.digest, stream=True)
        with response:
            if response.status_code == 404:
                raise RegistryNotFoundError(
                    f"{what} is missing from the registry although its manifest lists it; push the component again",
                    reference=str(ref),
                    digest=descriptor.digest,
                )
            self._session.check(response, "pull", repository=ref.repository)
            data = self._read_bounded(response, descriptor.size, what, exact=True)
        verify_digest(data, descriptor.digest, what=what)
        return data

    # -- writing -----------------------------------------------------------

    def push_blob(self, ref: OciReference, data: bytes, media_type: str) -> Descriptor:
        """Upload `data` to `ref`'s repository (skipped if the registry has it); return its descriptor.

        A monolithic upload: POST for a session, then one PUT with the digest.
        Raises `RegistryError` when the registry gives no upload Location,
        `IntegrityError` when it computed another digest (DIGEST_INVALID).
        """
        digest = sha256_digest(data)
        descriptor = Descriptor(media_type, digest, len(data))
        container = self._container(ref)
        head = self._session.do_request(f"{self._prefix}://{container.get_blob_url(digest)}", "HEAD")
        head.close()
        if head.status_code == 200:
            return descriptor
        start = self._session.do_request(
            f"{self._prefix}://{container.upload_blob_url()}",
            "POST",
            headers={"Content-Type": "application/octet-stream", "Content-Length": "0"},
        )
        with start:
            self._session.check(start, "push to", repository=ref.repository)
            location = self._session._get_location(start, container)  # noqa: SLF001 - oras's own helper
        if not location:
            raise RegistryError(f"the OCI registry {self.host} started an upload to {ref.repository} without a Location")
        url = oras.utils.append_url_params(location, {"digest": digest})
        done = self._session.do_request(
            url,
            "PUT",
            data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        with done:
            if done.status_code == 400 and "DIGEST_INVALID" in registry_error_codes(done):
                raise IntegrityError(f"the OCI registry {self.host} computed another digest than {digest} for the upload")
            self._session.check(done, "push to", repository=ref.repository)
        return descriptor

    def push_manifest(self, ref: OciReference, body: bytes, media_type: str) -> str:
        """Upload a manifest under `ref`'s tag; return its digest (checked against the registry's).

        Raises `RegistryError` when `ref` has no tag or is pinned to a digest,
        `RegistryNotFoundError` when the registry misses a blob the manifest
        references, `IntegrityError` when it stored the manifest under another digest.
        """
        if ref.tag is None or ref.digest is not None:
            raise RegistryError(f"{ref}: push needs a tag reference such as oci://{ref.host}/{ref.repository}:1.0.0")
        digest = sha256_digest(body)
        response = self._session.do_request(
            self._manifest_url(ref), "PUT", data=body, headers={"Content-Type": media_type}
        )
        with response:
            if response.status_code == 404:
                raise RegistryNotFoundError(
                    f"the OCI registry {self.host} refused the manifest for {ref}: a blob it references is missing",
                    reference=str(ref),
                )
            self._session.check(response, "push to", repository=ref.repository)
            announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise IntegrityError(f"the OCI registry {self.host} stored manifest {announced} instead of {digest} for {ref}")
        return digest

    # -- helpers -----------------------------------------------------------

    @property
    def _prefix(self) -> str:
        return self._session.prefix

    def _container(self, ref: OciReference) -> Container:
        """oras's view of `ref`, set field by field: its own parser guesses hosts from dots."""
        namespace, _, name = ref.repository.rpartition("/")
        container = Container(name, registry=ref.host)
        container.namespace = namespace or None
        container.repository = name
        container.tag = ref.tag or "latest"
        container.digest = ref.digest
        return container

    def _manifest_url(self, ref: OciReference) -> str:
        return f"{self._prefix}://{self._container(ref).manifest_url(ref.lookup)}"

    def _check_manifest_response(self, response: requests.Response, ref: OciReference, action: str) -> None:
        if response.status_code == 404:
            codes = registry_error_codes(response)
            if "NAME_UNKNOWN" in codes:
                problem = f"the repository '{ref.repository}' does not exist"
            elif ref.digest is not None:
                problem = f"the repository '{ref.repository}' has no manifest {ref.digest}"
            else:
                problem = f"the repository '{ref.repository}' has no tag '{ref.tag}'"
            raise RegistryNotFoundError(
                f"{ref} not found: on the OCI registry {self.host}, {problem}; check the reference, "
                "or publish it with `platform push FILE.wasm " + f"oci://{ref.host}/{ref.repository}:TAG`",
                reference=str(ref),
            )
        self._session.check(response, action, repository=ref.repository)

    def _read_bounded(self, response: requests.Response, limit: int, what: str, *, exact: bool = False) -> bytes:
        """Read a streamed body of at most `limit` bytes (exactly `limit` if `exact`)."""
        chunks: list[bytes] = []
        total = 0
        with self._session.reading(what):
            for chunk in response.iter_content(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise IntegrityError(
                        f"{what} is larger than the {limit} bytes expected; refusing it, nothing was cached"
                    )
                chunks.append(chunk)
        if exact and total != limit:
            raise IntegrityError(
                f"{what} is {total} bytes but its manifest declares {limit}; refusing it, nothing was cached"
            )
        return b"".join(chunks)
