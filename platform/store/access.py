"""Who a process is to Redis, and how it gets in: an ACL user and TLS, both written in the URL.

`--redis rediss://USER:PASSWORD@HOST:PORT?ssl_ca_certs=/path/ca.pem` is
redis-py's own URL syntax: its clients put the user, the password and the
TLS settings into the keyword arguments of every connection they make,
pooled or not, to one server or to each node of a cluster, and Dolmen's own
connections are made from those (`connection.dedicated_connection`,
`async_links`). What this module adds is what users see: a refusal (a
password or user the server does not accept, a command the user may not
run, a certificate that is not trusted, a server without TLS) told apart
from an outage and named with its fix, and URLs shown without their
passwords.
"""

from __future__ import annotations

import re

import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.exceptions import AuthenticationError, NoPermissionError

from ..errors import StoreAccessError

# Dolmen's keys and channels start with `dolmen:`, but for `platform gc`'s marks, `{dolmen:blob:...}:condemned`
# (hash-tagged to their blob's slot); it needs INFO (cluster mode, memory) and no other command of
# @dangerous (CONFIG, KEYS, FLUSHALL, ...). tests/store/test_access.py and tests/cluster/ run as such a user.
LEAST_ACL = "~dolmen:* ~{dolmen:* &dolmen:* +@all -@dangerous +info"

# What OpenSSL says when the other side answered a TLS handshake with something that is not TLS.
_NOT_TLS = ("WRONG_VERSION_NUMBER", "record layer failure", "packet length too long", "unknown protocol")


def redacted(url: str) -> str:
    """`url` with its password (and any password among its query arguments) shown as `***`: for logs and messages."""
    # Up to the last '@': a password that was not URL-encoded may hold '@', '/' or ':' (and then is no netloc).
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:)(.*)@", r"\1***@", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a malformed URL)"
    if "password" in parts.query:
        query = [(k, "***" if "password" in k else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        parts = parts._replace(query=urlencode(query, safe="/*"))
    return urlunsplit(parts)


def refusal(error: BaseException, where: str) -> StoreAccessError | None:
    """The error naming the fix when `error` means the server at `where` refused this process; None otherwise.

    A refusal is not an outage: trying again changes nothing until the URL
    (or the server's ACL or certificate) changes, so it must not be retried
    as if the server were down, nor reported as unreachable.
    """
    chain = _chain(error)  # a cluster client raises its own exception from the node's
    auth = next((e for e in chain if isinstance(e, AuthenticationError)), None)
    if auth is not None:
        return StoreAccessError(
            f"{where} refused to let this process in ({auth}). Put a user it knows and that user's password "
            "in the URL: --redis redis://USER:PASSWORD@HOST:PORT (rediss:// with TLS), URL-encoded (an @ in a "
            "password as %40, : as %3A, / as %2F); a URL with a password and no user logs in as the `default` user"
        )
    denied = next((e for e in chain if isinstance(e, NoPermissionError)), None)
    if denied is not None:
        return StoreAccessError(
            f"{where} does not let this process's user do what Dolmen needs ({denied}). Give the user Dolmen's keys "
            f"and channels and the commands it runs: ACL SETUSER USER {LEAST_ACL} (on every node of a cluster)"
        )
    tls = _tls_error(error)
    if isinstance(tls, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(error):
        detail = tls.verify_message if isinstance(tls, ssl.SSLCertVerificationError) and tls.verify_message else error
        return StoreAccessError(
            f"{where} presented a TLS certificate this process does not trust ({detail}). Name the certificate of "
            "the CA that signed it in the URL, rediss://HOST:PORT?ssl_ca_certs=/path/to/ca.pem (or add that CA to "
            "the system's trust store); the certificate must also name the host or IP address the process "
            "connects to: on a cluster, each address its nodes announce"
        )
    if any(marker in str(tls or error) for marker in _NOT_TLS):
        return StoreAccessError(
            f"{where} does not speak TLS ({tls or error}): use redis://, not rediss://, for a server without TLS"
        )
    return None


def tls_hint(error: BaseException) -> str:
    """For an unreachable server: what a TLS handshake that got no answer suggests, else "".

    Valkey without TLS takes a TLS greeting for the start of a command and
    waits for the rest, so rediss:// to it times out rather than fails.
    """
    if "handshake operation timed out" in " ".join(str(e) for e in _chain(error)):
        return "; its TLS handshake got no answer: if the server does not use TLS, use redis://, not rediss://"
    return ""


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions it was raised from or while handling, nearest first."""
    found: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(found) < 5:
        found.append(seen)
        seen = seen.__cause__ or seen.__context__
    return found


def _tls_error(error: BaseException) -> ssl.SSLError | None:
    """The `ssl.SSLError` behind `error`: redis-py raises its own ConnectionError while handling it."""
    return next((e for e in _chain(error) if isinstance(e, ssl.SSLError)), None)


__all__ = ["LEAST_ACL", "redacted", "refusal", "tls_hint"]
