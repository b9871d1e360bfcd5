"""`oci://` references to components in an OCI registry.

Grammar (a subset of the distribution reference grammar, with a scheme so a
deployment can tell a registry reference from a local path; repository and
tag syntax as in the OCI distribution spec,
https://github.com/opencontainers/distribution-spec/blob/main/spec.md):

    oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]

HOST is a DNS name, an IPv4 address or a bracketed IPv6 address (`[::1]`).
REPO is one or more lowercase path components. With neither a tag nor a
digest the tag is `latest`; with a digest the reference is *pinned* and the
tag, if any, is informational only.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from ..platform.errors import InvalidNameError

SCHEME = "oci://"
DEFAULT_TAG = "latest"

# From the OCI distribution spec: path components and tags.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_LOOPBACK_NAMES = {"localhost"}

_EXAMPLE = "oci://HOST[:PORT]/REPO[:TAG] or oci://HOST[:PORT]/REPO@sha256:<64 hex digits>, e.g. oci://127.0.0.1:5000/demo/orders:1.0.0"


@dataclass(frozen=True, slots=True)
class OciReference:
    """A component in a registry: `host` (with port), `repository`, and a tag and/or digest."""

    host: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> OciReference:
        """Parse `oci://HOST[:PORT]/REPO[:TAG|@sha256:...]`; raise InvalidNameError naming the bad part."""
        if not text.startswith(SCHEME):
            raise InvalidNameError(f"'{text}' is not an OCI reference: it must start with {SCHEME}; expected {_EXAMPLE}")
        rest = text[len(SCHEME):]
        host, slash, path = rest.partition("/")
        if not slash or not path:
            raise InvalidNameError(f"'{text}' has no repository after the registry host; expected {_EXAMPLE}")
        _check_host(text, host)
        digest: str | None = None
        if "@" in path:
            path, _, digest = path.partition("@")
            if not _DIGEST_RE.match(digest):
                raise InvalidNameError(
                    f"'{text}': '{digest}' is not a sha256 digest; expected 'sha256:' and 64 lowercase hex digits"
                )
        tag: str | None = None
        last_slash = path.rfind("/")
        colon = path.rfind(":")
        if colon > last_slash:
            path, tag = path[:colon], path[colon + 1 :]
            if not _TAG_RE.match(tag):
                raise InvalidNameError(
                    f"'{text}': '{tag}' is not a valid tag; a tag is 1-128 letters, digits, '_', '.' or '-', "
                    "not starting with '.' or '-'"
                )
        if not _REPOSITORY_RE.match(path):
            raise InvalidNameError(
                f"'{text}': '{path}' is not a valid repository name; use lowercase letters, digits and "
                "'.', '_', '-' separators, with '/' between path components"
            )
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(host=host, repository=path, tag=tag, digest=digest)

    def __str__(self) -> str:
        text = f"{SCHEME}{self.host}/{self.repository}"
        if self.tag is not None and self.digest is None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def pinned(self) -> bool:
        """Whether the reference names an immutable manifest digest."""
        return self.digest is not None

    @property
    def lookup(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def hostname(self) -> str:
        """The host without its port (and without IPv6 brackets)."""
        return host_name(self.host)

    @property
    def is_loopback(self) -> bool:
        """Whether the registry is on this machine (plain HTTP is then allowed without --insecure)."""
        return host_is_loopback(self.host)

    def with_digest(self, digest: str) -> OciReference:
        """The same repository pinned to `digest` (the tag is dropped: a pinned reference ignores it)."""
        return replace(self, tag=None, digest=digest)

    def with_tag(self, tag: str) -> OciReference:
        """The same repository at `tag`, unpinned."""
        return replace(self, tag=tag, digest=None)


def host_name(host: str) -> str:
    """`HOST[:PORT]` or `[IPv6][:PORT]` without the port and brackets."""
    if host.startswith("[") and "]" in host:
        return host[1 : host.index("]")]
    if host.count(":") > 1:  # a bare IPv6 address such as ::1
        return host
    return host.rsplit(":", 1)[0] if ":" in host else host


def host_is_loopback(host: str) -> bool:
    """Whether `HOST[:PORT]` is this machine: localhost, 127.0.0.0/8 or ::1."""
    name = host_name(host)
    if name.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_host(text: str, host: str) -> None:
    """Validate HOST[:PORT] or [IPv6][:PORT]."""
    port: str | None = None
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise InvalidNameError(f"'{text}': unclosed '[' in the registry host; write IPv6 hosts as [::1]:5000")
        address, after = host[1:end], host[end + 1 :]
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise InvalidNameError(f"'{text}': '{address}' is not an IPv6 address") from None
        if after:
            if not after.startswith(":"):
                raise InvalidNameError(f"'{text}': unexpected '{after}' after the IPv6 host")
            port = after[1:]
    else:
        name, colon, port_text = host.partition(":")
        if colon:
            port = port_text
        if not name or not _HOSTNAME_RE.match(name):
            raise InvalidNameError(f"'{text}': '{name}' is not a valid registry host name; expected {_EXAMPLE}")
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise InvalidNameError(f"'{text}': '{port}' is not a valid port; use a number from 1 to 65535")
