"""Parsing and printing `oci://` references."""

from __future__ import annotations

import pytest

from dolmen.platform.errors import InvalidNameError
from dolmen.registry.reference import OciReference, host_is_loopback

DIGEST = "sha256:" + "ab" * 32


def test_tag_reference_parses_into_parts() -> None:
    """A tag reference yields host with port, repository path and tag."""
    ref = OciReference.parse("oci://registry.example.com:5000/team/orders:1.2.0")
    assert ref == OciReference("registry.example.com:5000", "team/orders", "1.2.0", None)
    assert str(ref) == "oci://registry.example.com:5000/team/orders:1.2.0"
    assert ref.lookup == "1.2.0"
    assert not ref.pinned


def test_missing_tag_defaults_to_latest() -> None:
    """Without a tag or digest the tag is `latest`."""
    ref = OciReference.parse("oci://localhost/orders")
    assert ref.tag == "latest"
    assert str(ref) == "oci://localhost/orders:latest"


def test_digest_reference_is_pinned() -> None:
    """A digest reference is pinned and looks itself up by digest."""
    ref = OciReference.parse(f"oci://127.0.0.1:5000/a/b@{DIGEST}")
    assert ref.pinned and ref.digest == DIGEST and ref.tag is None
    assert ref.lookup == DIGEST
    assert str(ref) == f"oci://127.0.0.1:5000/a/b@{DIGEST}"


def test_tag_and_digest_keeps_the_digest() -> None:
    """With both a tag and a digest, the digest decides and the printed form drops the tag."""
    ref = OciReference.parse(f"oci://h.io/a:v1@{DIGEST}")
    assert ref.tag == "v1" and ref.digest == DIGEST
    assert str(ref) == f"oci://h.io/a@{DIGEST}"


def test_with_digest_round_trips_through_parse() -> None:
    """A pinned reference printed by `with_digest` parses back to itself."""
    pinned = OciReference.parse("oci://h.io:443/a/b:v1").with_digest(DIGEST)
    assert OciReference.parse(str(pinned)) == pinned


def test_ipv6_host_with_port() -> None:
    """A bracketed IPv6 host parses, and ::1 counts as loopback."""
    ref = OciReference.parse("oci://[::1]:5000/demo:v1")
    assert ref.host == "[::1]:5000" and ref.hostname == "::1"
    assert ref.is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:5000", True), ("localhost", True), ("LOCALHOST:80", True), ("127.8.9.1", True),
     ("[::1]:5000", True), ("::1", True), ("ghcr.io", False), ("10.0.0.1:5000", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    """Only localhost, 127.0.0.0/8 and ::1 count as loopback."""
    assert host_is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("registry.io/a:v1", "must start with oci://"),
        ("https://registry.io/a:v1", "must start with oci://"),
        ("oci://registry.io", "no repository"),
        ("oci://registry.io/", "no repository"),
        ("oci://registry.io/Upper/Case:v1", "not a valid repository name"),
        ("oci://registry.io/a//b", "not a valid repository name"),
        ("oci://registry.io/a:-bad", "not a valid tag"),
        ("oci://registry.io/a:" + "x" * 129, "not a valid tag"),
        ("oci://registry.io/a@sha256:abc", "not a sha256 digest"),
        ("oci://registry.io/a@md5:" + "ab" * 16, "not a sha256 digest"),
        ("oci://registry.io:99999/a", "not a valid port"),
        ("oci://registry.io:/a", "not a valid port"),
        ("oci://bad_host!/a", "not a valid registry host"),
        ("oci://[::1/a", "unclosed '['"),
        ("oci://[nope]:5000/a", "not an IPv6 address"),
    ],
)
def test_malformed_references_are_refused_with_the_reason(text: str, fragment: str) -> None:
    """Each malformed reference raises InvalidNameError naming what is wrong."""
    with pytest.raises(InvalidNameError, match=fragment.replace("[", r"\[").replace("(", r"\(")):
        OciReference.parse(text)
