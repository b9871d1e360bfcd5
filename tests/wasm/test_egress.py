"""Egress decisions: which destinations an activity's outgoing requests may reach, and what a refusal says.

Pure: host names resolve through a table given to the policy, never through DNS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from dolmen.platform.wasm.egress import EgressPolicy, HostPattern, IpAddress, Target, classify_address
from dolmen.platform.wasm.guard import Destination

# What the table resolver answers; a name missing from it does not resolve.
NAMES = {
    "api.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "metadata.internal": ["169.254.169.254"],
    "dual.example.com": ["93.184.215.14", "::1"],  # one public address and one loopback: refused
    "rebound.example.com": ["10.0.0.7"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
}
GRANT = "list {pattern} under allowed_hosts of component 'fetcher' in the deployment to allow it"


def table(host: str, port: int) -> Sequence[IpAddress]:
    if host not in NAMES:
        raise OSError(-2, "Name or service not known")
    return [ipaddress.ip_address(a) for a in NAMES[host]]


def policy(allowed: list[str] | None = None) -> EgressPolicy:
    return EgressPolicy.allowing(allowed, grant=GRANT, resolver=table)


def url(text: str) -> Destination:
    """The destination of `scheme://authority/path`."""
    scheme, _, rest = text.partition("://")
    return Destination(scheme, rest.partition("/")[0])


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00:ec2::254", "a private address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("100.100.100.200", "a reserved address"),
        ("192.0.2.1", "a reserved address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("2001:db8::1", "a reserved address"),
        ("fec0::1", "a site-local address"),
        ("::ffff:169.254.169.254", "an IPv4-mapped 169.254.169.254, a link-local address"),
        ("::ffff:10.0.0.1", "an IPv4-mapped 10.0.0.1, a private address"),
        ("64:ff9b::7f00:1", "a NAT64 address of 127.0.0.1, a loopback address"),
        ("2002:a9fe:a9fe::1", "a 6to4 address of 169.254.169.254, a link-local address"),
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_addresses_are_classified(address: str, kind: str | None) -> None:
    """Public addresses are None; every other kind is named, through an IPv6 address that embeds an IPv4 one too."""
    assert classify_address(ipaddress.ip_address(address)) == kind


def test_by_default_a_link_local_address_is_refused_with_the_setting_that_allows_it() -> None:
    """The cloud metadata address is refused; the message names host, port, why, and what to write where."""
    assert policy().check(url("http://169.254.169.254/latest/meta-data")) == (
        "refused an outgoing request to 169.254.169.254:80 (a link-local address): "
        "list 169.254.169.254:80 under allowed_hosts of component 'fetcher' in the deployment to allow it"
    )


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("http://127.0.0.1:8080", "(a loopback address)"),
        ("https://[::1]", "[::1]:443 (a loopback address)"),
        ("http://[::ffff:127.0.0.1]:8400", "(an IPv4-mapped 127.0.0.1, a loopback address)"),
        ("http://localhost:8400", "localhost:8400 (it resolves to 127.0.0.1, a loopback address)"),
        ("http://LocalHost.:8400", "localhost:8400 (it resolves to 127.0.0.1"),
        ("http://metadata.internal", "metadata.internal:80 (it resolves to 169.254.169.254, a link-local address)"),
        ("https://dual.example.com", "(it resolves to ::1, a loopback address)"),
        ("https://rebound.example.com", "(it resolves to 10.0.0.7, a private address)"),
        ("https://mapped.example.com", "(it resolves to ::ffff:7f00:1, an IPv4-mapped 127.0.0.1, a loopback address)"),
        ("http://10.0.0.1:9000", "10.0.0.1:9000 (a private address)"),
        ("http://0.0.0.0:8400", "(an unspecified address)"),
        ("https://nowhere.example", "nowhere.example:443 (the name does not resolve, so its addresses cannot be checked: Name or service not known)"),
    ],
)
def test_by_default_non_public_destinations_are_refused(destination: str, reason: str) -> None:
    """Loopback, private, link-local and unspecified addresses are refused, as written or as a name resolves."""
    refusal = policy().check(url(destination))
    assert refusal is not None and reason in refusal, refusal
    assert refusal.endswith("in the deployment to allow it")


@pytest.mark.parametrize("destination", ["https://api.example.com", "http://api.example.com:8080", "http://8.8.8.8", "https://[2606:4700::1111]:8443"])
def test_by_default_public_destinations_are_allowed(destination: str) -> None:
    """A public address, or a name whose every address (IPv4 and IPv6) is public, is allowed on any port."""
    assert policy().check(url(destination)) is None


def test_a_host_getaddrinfo_reads_as_an_address_is_checked_as_one() -> None:
    """`127.1` is not a dotted address but connects to 127.0.0.1: it is resolved, and refused."""
    ones = EgressPolicy(resolver=lambda host, port: [ipaddress.ip_address("127.0.0.1")] if host == "127.1" else [])
    refusal = ones.check(url("http://127.1:80"))
    assert refusal is not None and "(it resolves to 127.0.0.1, a loopback address)" in refusal


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("ftp://api.example.com", "it uses the scheme 'ftp'; only http and https are supported"),
        ("http://", "it names no host"),
        ("http://user:pw@api.example.com", "carries user info"),
        ("http://api.example.com:99999", "is not a host with an optional port"),
        ("http://api.example.com:", "is not a host with an optional port"),
        ("http://[::1", "is not a host with an optional port"),
        ("http://[nope]:80", "is not a host with an optional port"),
    ],
)
def test_requests_that_cannot_be_checked_are_refused(destination: str, reason: str) -> None:
    """A scheme other than http(s), no host, user info or a malformed authority: refused, allowed hosts or not."""
    for rules in (policy(), policy(["*:*"])):
        refusal = rules.check(url(destination))
        assert refusal is not None and reason in refusal, refusal


def test_a_request_without_a_scheme_goes_to_the_https_port() -> None:
    """wasmtime sends a request that names no scheme over https: a pattern without a port means 443 then."""
    assert policy(["api.example.com"]).check(Destination(None, "api.example.com")) is None
    assert policy(["api.example.com:80"]).check(Destination(None, "api.example.com")) is not None


@pytest.mark.parametrize(
    ("pattern", "allowed", "refused"),
    [
        ("api.example.com", ["http://api.example.com", "https://api.example.com", "https://API.Example.com.", "http://api.example.com:80"],
         ["https://api.example.com:8443", "http://api.example.com:443", "https://www.example.com", "https://example.com", "https://api.example.com.evil.org"]),
        ("api.example.com:8443", ["https://api.example.com:8443", "http://api.example.com:8443"], ["https://api.example.com", "https://api.example.com:8444"]),
        ("*.example.org", ["https://a.example.org", "http://a.b.example.org"], ["https://example.org", "https://badexample.org", "https://a.example.org:8443"]),
        ("*.example.org:8443", ["https://a.example.org:8443"], ["https://a.example.org", "https://example.org:8443"]),
        ("localhost:*", ["http://localhost:1", "http://localhost:65535", "https://localhost"], ["http://127.0.0.1:8080", "http://localhost.example.com"]),
        ("127.0.0.1:8080", ["http://127.0.0.1:8080"], ["http://127.0.0.1:8081", "http://localhost:8080", "http://127.1:8080", "http://[::ffff:127.0.0.1]:8080"]),
        ("10.0.0.5", ["http://10.0.0.5", "https://10.0.0.5"], ["http://10.0.0.5:8080", "http://10.0.0.6"]),
        ("[::1]:*", ["http://[::1]:8080", "http://[0:0::1]"], ["http://127.0.0.1:8080"]),
        ("[FD00::1]:8080", ["http://[fd00::1]:8080"], ["http://[fd00::2]:8080"]),
        ("*", ["https://anything.example", "http://169.254.169.254"], ["http://169.254.169.254:8080"]),
        ("*:*", ["http://169.254.169.254:8080", "https://[::1]:1"], []),
    ],
)
def test_allowed_host_patterns(pattern: str, allowed: list[str], refused: list[str]) -> None:
    """Without a port a pattern means the scheme's default port; `:*` any port; `*.` subdomains only; `*` any host."""
    rules = policy([pattern])
    for destination in allowed:
        assert rules.check(url(destination)) is None, f"{pattern} should allow {destination}"
    for destination in refused:
        refusal = rules.check(url(destination))
        assert refusal is not None, f"{pattern} should refuse {destination}"


def test_with_allowed_hosts_only_listed_destinations_go_out_wherever_they_resolve() -> None:
    """A listed private address or a listed name that resolves to one is allowed; an unlisted public host is not."""
    rules = policy(["127.0.0.1:8080", "metadata.internal", "localhost:*"])
    assert rules.check(url("http://127.0.0.1:8080")) is None
    assert rules.check(url("http://metadata.internal")) is None
    assert rules.check(url("http://localhost:9")) is None
    assert rules.check(url("https://api.example.com")) == (
        "refused an outgoing request to api.example.com:443 (not an allowed host; allowed: 127.0.0.1:8080, "
        "metadata.internal, localhost:*): list api.example.com:443 under allowed_hosts of component 'fetcher' "
        "in the deployment to allow it"
    )


def test_an_empty_list_allows_no_request() -> None:
    """`allowed_hosts: []` declares an activity that makes no outgoing requests."""
    refusal = policy([]).check(url("https://api.example.com"))
    assert refusal is not None and "(no outgoing request is allowed)" in refusal


def test_a_refusal_suggests_a_pattern_only_where_one_exists() -> None:
    """A host written as `127.1` has no pattern; the message says how to write it instead."""
    refusal = policy(["127.0.0.1"]).check(url("http://127.1"))
    assert refusal is not None and "write it as a name or a dotted address" in refusal and "allowed_hosts" not in refusal


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("api.example.com", "api.example.com"),
        ("API.Example.COM:443", "api.example.com:443"),
        ("*.example.org:8443", "*.example.org:8443"),
        ("localhost:*", "localhost:*"),
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("[0:0::1]:*", "[::1]:*"),
        ("[fd00::1]", "[fd00::1]"),
        ("*", "*"),
        ("*:*", "*:*"),
        ("internal_service.local", "internal_service.local"),
        ("example.com.", "example.com"),
    ],
)
def test_patterns_are_parsed_and_shown_in_a_canonical_form(text: str, shown: str) -> None:
    assert str(HostPattern.parse(text)) == shown


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "must not be empty"),
        ("https://api.example.com/v1", "has a scheme; write the host alone, e.g. api.example.com"),
        ("api.example.com/v1", "a pattern has no path and no address range"),
        ("10.0.0.0/8", "no address range"),
        ("api.example.com:0", "'0' is not a port; write a number from 1 to 65535, or * for any port"),
        ("api.example.com:http", "'http' is not a port"),
        ("api.example.com:", "'' is not a port"),
        ("::1", "write an IPv6 address in brackets, e.g. [::1] or [::1]:8080"),
        ("[::g]", "is not an IPv6 address"),
        ("[::1]x", "is not a host with an optional port"),
        ("api.*.com", "a wildcard is allowed only as the first label"),
        ("*example.com", "a wildcard is allowed only as the first label"),
        ("*.10.0.0.1", "a wildcard applies to host names, not to addresses"),
        ("127.1", "nor an IPv4 address in dotted form"),
        ("10.0.0.300", "nor an IPv4 address in dotted form"),
        ("bücher.example", "in its xn-- form"),
        ("a..b", "is neither a host name"),
        ("-a.example.com", "is neither a host name"),
        ("user@api.example.com", "is not a host"),
        ("api example.com", "is not a host"),
    ],
)
def test_bad_patterns_name_the_fix(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        HostPattern.parse(text)
    assert fragment in str(caught.value)


def test_targets_keep_name_address_and_port_apart() -> None:
    """A name is lowercased without its final dot; an address is parsed; the port defaults by scheme."""
    assert Target.parse(Destination("https", "API.example.com.")) == Target("api.example.com", None, 443, True)
    assert Target.parse(Destination("http", "[::1]:8080")) == Target(None, ipaddress.ip_address("::1"), 8080, False)
    assert str(Target.parse(Destination("http", "[::1]"))) == "[::1]:80"


def test_policies_are_values() -> None:
    """Equal patterns make equal, hashable policies (instances made under one are kept apart from another's)."""
    assert policy(["a.example.com"]) == policy(["A.example.com"])
    assert hash(policy(["a.example.com"])) == hash(policy(["a.example.com"]))
    assert policy(None) != policy([])
