"""Bearer-token authentication with two scopes: `invoke` and `admin`.

`invoke` may call functions (by name or through deployment routes), list
the functions and read an execution by its id; `admin` may also list every
execution, cancel, and read `/metrics`. `/healthz` and the dashboard's
static page are always open (the page asks for a token when the API does).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.requests import HTTPConnection

from .errors import ForbiddenError, UnauthorizedError
from .settings import Scope, Token

_RANK: dict[Scope, int] = {"invoke": 1, "admin": 2}


class Authenticator:
    """Checks the `Authorization: Bearer TOKEN` header (RFC 6750 §2.1) against the configured tokens."""

    def __init__(self, tokens: Iterable[Token]) -> None:
        self._tokens = tuple(tokens)

    @property
    def enabled(self) -> bool:
        """Whether any token is configured (without one, the API is open)."""
        return bool(self._tokens)

    def scope_of(self, secret: str) -> Scope | None:
        """The scope of `secret` (the widest when several tokens match), compared in constant time against every
        token (`hmac.compare_digest`); None when none matches."""
        found: Scope | None = None
        given = secret.encode()
        for token in self._tokens:
            if hmac.compare_digest(given, token.secret.encode()):
                if found is None or _RANK[token.scope] > _RANK[found]:
                    found = token.scope
        return found

    def check(self, conn: HTTPConnection, needed: Scope) -> None:
        """Raise 401 without a known token, 403 when its scope is too small; no-op without tokens.

        `UnauthorizedError` (401 `unauthorized`, with `WWW-Authenticate: Bearer`) for a missing, malformed or
        unknown token; `ForbiddenError` (403 `forbidden`) for an `invoke` token where `admin` is needed.
        """
        if not self._tokens:
            return
        header = conn.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise UnauthorizedError(
                "this gateway requires a bearer token: send 'Authorization: Bearer TOKEN' "
                "(tokens are set with `platform gateway --token` or DOLMEN_GATEWAY_TOKENS)"
            )
        scope = self.scope_of(secret.strip())
        if scope is None:
            raise UnauthorizedError("the bearer token is not one this gateway accepts")
        if _RANK[scope] < _RANK[needed]:
            raise ForbiddenError(f"this request needs an {needed} token; the token given is an {scope} token")
