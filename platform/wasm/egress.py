"""Egress: which destinations an activity's outgoing HTTP requests may reach.

The guard (see `guard`) asks an `EgressPolicy` about each request before
wasmtime sends it: `check(destination)` returns None to allow it, or the
message the request is refused with.

- **No allowed hosts** (the default): a request may go to a public address
  only. A host given as an address is classified as written; a host name is
  resolved (by the policy's `resolver`, the system's `getaddrinfo` by
  default, which is what wasmtime connects through) and every address it
  resolves to, IPv4 and IPv6, must be public. Loopback, private, link-local
  (the cloud metadata address 169.254.169.254), unspecified, multicast and
  otherwise reserved addresses are refused, also when an IPv6 address embeds
  one (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
- **Allowed hosts** (`allowed_hosts` in a deployment, `--allow-host` of
  `platform run`): a request may go only where a pattern allows, wherever the
  name resolves (a listed private address or name is then allowed). A
  pattern is a host with an optional port: `api.example.com` (the scheme's
  default port: 80 for http, 443 for https), `api.example.com:8443`,
  `localhost:*` (any port), `*.example.org` (any subdomain, not example.org
  itself), `10.0.0.5`, `[fd00::1]:8080`, or `*` (any host).

Known limit: a name is resolved here and again by wasmtime when it connects,
so a DNS answer that changes in between (DNS rebinding) is not seen.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .guard import Destination

__all__ = ["EgressPolicy", "HostPattern", "IpAddress", "Resolver", "Target", "classify_address", "system_resolver"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Every address a host name resolves to; raises OSError when it does not resolve.
Resolver = Callable[[str, int], Sequence[IpAddress]]

DEFAULT_PORTS = {"http": 80, "https": 443}
# wasmtime sends a request that names no scheme over https.
_NO_SCHEME = "https"
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_DIGITS = re.compile(r"^[0-9]+\Z")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_SHOWN_CHARS = 200
_DEFAULT_GRANT = "list {pattern} under the component's allowed_hosts to allow it"
_PATTERN_EXAMPLES = "e.g. api.example.com, api.example.com:8443, *.example.org, 10.0.0.5:8080, [::1]:8080 or localhost:*"


def system_resolver(host: str, port: int) -> list[IpAddress]:
    """Every address `host` resolves to through `getaddrinfo`, as wasmtime's connect resolves it."""
    found: list[IpAddress] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
            if address not in found:
                found.append(address)
    return found


def classify_address(address: IpAddress) -> str | None:
    """None for a public address, else what it is ("a loopback address", ...)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded, how = _embedded_ipv4(address)
        if embedded is not None:
            inner = classify_address(embedded)
            return None if inner is None else f"{how} {embedded}, {inner}"
        if address.is_site_local:
            return "a site-local address"
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    if address.is_reserved or address.is_private or not address.is_global:
        return "a reserved address"  # documentation, benchmarking, shared (CGNAT, 100.64.0.0/10) and other ranges
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    """The IPv4 address an IPv6 address carries, and how it is carried."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "an IPv4-mapped"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "a NAT64 address of"
    if address.sixtofour is not None:
        return address.sixtofour, "a 6to4 address of"
    return None, ""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes, parsed: a name (lowercase, no final dot) or an address, and the port."""

    name: str | None
    address: IpAddress | None
    port: int
    default_port: bool

    @classmethod
    def parse(cls, destination: Destination) -> Target | str:
        """The target of `destination`, or why it cannot be checked (an unusable scheme or authority)."""
        scheme = (destination.scheme or _NO_SCHEME).lower()
        default = DEFAULT_PORTS.get(scheme)
        authority = destination.authority
        if default is None:
            return f"it uses the scheme '{_shown(scheme)}'; only http and https are supported"
        if not authority:
            return "it names no host"
        if "@" in authority:
            return f"its authority '{_shown(authority)}' carries user info; send credentials in a header instead"
        host, port_text = _split_authority(authority)
        port = default if port_text is None else _port(port_text)
        if host is None or port is None:
            return f"its authority '{_shown(authority)}' is not a host with an optional port"
        address = _address(host)
        if address is None and host.startswith("["):
            return f"its authority '{_shown(authority)}' is not a host with an optional port"
        name = None if address is not None else _name(host)
        return cls(name, address, port, port == default)

    @property
    def host(self) -> str:
        """The host as an authority writes it (an IPv6 address in brackets)."""
        if isinstance(self.address, ipaddress.IPv6Address):
            return f"[{self.address}]"
        return str(self.address) if self.address is not None else _shown(self.name or "")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One allowed destination: `host` is a name, `*.` and a name, `*`, or an address; `port` None is the scheme's default."""

    host: str
    address: IpAddress | None = None
    port: int | Literal["*"] | None = None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """A pattern from its text; ValueError naming the fix when it is not one."""
        if not text:
            raise ValueError(f"a pattern must not be empty; write a host, {_PATTERN_EXAMPLES}")
        if "://" in text:
            host = text.partition("://")[2].partition("/")[0] or "api.example.com"
            raise ValueError(f"'{text}' has a scheme; write the host alone, e.g. {host} (a pattern covers http and https)")
        if "/" in text:
            raise ValueError(f"'{text}' is not a host: a pattern has no path and no address range; write a host, {_PATTERN_EXAMPLES}")
        if "@" in text or any(c.isspace() for c in text):
            raise ValueError(f"'{text}' is not a host; write a host, {_PATTERN_EXAMPLES}")
        lowered = text.lower()
        if lowered.count(":") > 1 and not lowered.startswith("["):
            raise ValueError(f"'{text}': write an IPv6 address in brackets, e.g. [{text}] or [{text}]:8080")
        host, port_text = _split_authority(lowered)
        if host is None:
            raise ValueError(f"'{text}' is not a host with an optional port; {_PATTERN_EXAMPLES}")
        port: int | Literal["*"] | None = None
        if port_text == "*":
            port = "*"
        elif port_text is not None:
            port = _port(port_text)
            if port is None:
                raise ValueError(f"'{text}': '{port_text}' is not a port; write a number from 1 to 65535, or * for any port")
        if host == "*":
            return cls("*", None, port)
        address = _address(host)
        if address is not None:
            return cls(str(address), address, port)
        if host.startswith("["):
            raise ValueError(f"'{text}': '{host}' is not an IPv6 address; write e.g. [fd00::1] or [fd00::1]:8080")
        wildcard = host.startswith("*.")
        name = _name(host[2:] if wildcard else host)
        if "*" in name:
            raise ValueError(f"'{text}': a wildcard is allowed only as the first label, as in *.example.org, or alone (*) for any host")
        if wildcard and _address(name) is not None:
            raise ValueError(f"'{text}': a wildcard applies to host names, not to addresses; list each address")
        if not _valid_name(name):
            raise ValueError(
                f"'{text}': '{host}' is neither a host name (letters, digits, '-' and '_' in dot-separated labels; "
                "an internationalized name in its xn-- form) nor an IPv4 address in dotted form a.b.c.d"
            )
        return cls(f"*.{name}" if wildcard else name, None, port)

    def matches(self, target: Target) -> bool:
        """Whether this pattern allows a request to `target`."""
        if self.port is None:
            if not target.default_port:
                return False
        elif self.port != "*" and self.port != target.port:
            return False
        if self.host == "*":
            return True
        if self.address is not None:
            return self.address == target.address
        if target.name is None:
            return False
        if self.host.startswith("*."):
            return target.name.endswith(self.host[1:])
        return target.name == self.host

    def __str__(self) -> str:
        host = f"[{self.address}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Decides on an activity's outgoing requests: `check(destination)` is None to allow, else the refusal.

    `allowed` None means public destinations only; a tuple of patterns
    (possibly empty) means only what they match. `grant` says how to allow a
    refused destination, `{pattern}` standing for the pattern that would;
    `resolver` resolves host names (injectable so the decisions are pure).
    """

    allowed: tuple[HostPattern, ...] | None = None
    grant: str = _DEFAULT_GRANT
    resolver: Resolver = system_resolver

    @classmethod
    def allowing(cls, patterns: Iterable[str] | None, *, grant: str = _DEFAULT_GRANT, resolver: Resolver = system_resolver) -> EgressPolicy:
        """A policy from pattern texts (None: the default rules); ValueError names a bad pattern and the fix."""
        return cls(None if patterns is None else tuple(HostPattern.parse(p) for p in patterns), grant, resolver)

    def check(self, destination: Destination) -> str | None:
        """None to allow a request to `destination`, else the message it is refused with."""
        target = Target.parse(destination)
        if isinstance(target, str):
            where = f" to {_shown(destination.authority)}" if destination.authority else ""
            return f"refused an outgoing request{where}: {target}"
        reason = self._reason(target)
        if reason is None:
            return None
        try:
            pattern = HostPattern.parse(str(target))
        except ValueError:  # a host such as 127.1, which getaddrinfo reads as 127.0.0.1
            return f"refused an outgoing request to {target} ({reason}); no pattern names a host written so: write it as a name or a dotted address"
        return f"refused an outgoing request to {target} ({reason}): {self.grant.replace('{pattern}', str(pattern))}"

    def _reason(self, target: Target) -> str | None:
        """Why a request to `target` is refused; None when it is allowed."""
        if self.allowed is not None:
            if any(pattern.matches(target) for pattern in self.allowed):
                return None
            if not self.allowed:
                return "no outgoing request is allowed"
            return f"not an allowed host; allowed: {', '.join(str(p) for p in self.allowed)}"
        if target.address is not None:
            return classify_address(target.address)
        name = target.name or ""
        try:
            addresses = self.resolver(name, target.port)
        except (OSError, ValueError) as exc:  # ValueError: a name the idna codec cannot encode, or with a NUL
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return f"the name does not resolve, so its addresses cannot be checked: {_shown(detail)}"
        if not addresses:
            return "the name resolves to no address, so its addresses cannot be checked"
        for address in addresses:
            kind = classify_address(address)
            if kind is not None:
                return f"it resolves to {address}, {kind}"
        return None


def _split_authority(authority: str) -> tuple[str | None, str | None]:
    """(host, port text or None) of `host`, `host:port`, `[v6]` or `[v6]:port`; host None when malformed."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None, None
        host, rest = authority[: end + 1], authority[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return None, None
        return host, rest[1:]
    if authority.count(":") > 1:
        return None, None
    host, colon, port = authority.partition(":")
    if not host:
        return None, None
    return host, port if colon else None


def _port(text: str) -> int | None:
    if not _DIGITS.match(text) or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def _address(host: str) -> IpAddress | None:
    """The address a host written as an IPv4 address (dotted, strict) or a bracketed IPv6 address is."""
    try:
        if host.startswith("[") and host.endswith("]"):
            return ipaddress.IPv6Address(host[1:-1])
        return ipaddress.IPv4Address(host)
    except ValueError:
        return None


def _name(host: str) -> str:
    host = host.lower()
    return host[:-1] if host.endswith(".") else host


def _valid_name(name: str) -> bool:
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return False
    return not _DIGITS.match(labels[-1])  # 127.1 or 10.0.0.300: neither a name nor a dotted address


def _shown(text: str) -> str:
    """`text` for a message: cut short, control characters escaped (it comes from the guest)."""
    text = text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text) if not text.isprintable() else text
