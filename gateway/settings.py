"""The gateway's settings: where the store is, limits, tokens, CORS, replicas to wait for.

Tokens come from `--token TOKEN[:SCOPE]` options and from the environment
variable `DOLMEN_GATEWAY_TOKENS` (comma-separated `TOKEN[:SCOPE]` entries).
A scope is `invoke` (call functions and read the executions one knows the id
of) or `admin` (everything); a token without a scope is an admin token. With
no token configured the API is open, as on a developer's machine.

`--wait-replicas N` (or `DOLMEN_WAIT_REPLICAS`) makes every write wait for N
replicas of its master before the answer goes back, at most
`--wait-timeout-ms` (`DOLMEN_WAIT_TIMEOUT_MS`, default 1000).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..platform.config import ENV_WAIT_REPLICAS, ENV_WAIT_TIMEOUT_MS, env_int
from ..platform.errors import ConfigError
from ..platform.store.async_links import DEFAULT_WAIT_TIMEOUT_MS, ReplicaWait
from ..platform.wit.limits import DEFAULT_MAX_VALUE_BYTES, MAX_VALUE_ENV

Scope = Literal["invoke", "admin"]
SCOPES: tuple[Scope, ...] = ("invoke", "admin")

TOKENS_ENV = "DOLMEN_GATEWAY_TOKENS"
CORS_ENV = "DOLMEN_GATEWAY_CORS_ORIGINS"

_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._~+/=-]+\Z")

# Room for params at the default value limit written by name, with whitespace and escapes.
DEFAULT_MAX_BODY_BYTES = 2 * DEFAULT_MAX_VALUE_BYTES
DEFAULT_MAX_WAIT_S = 60.0
DEFAULT_ROUTE_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and what it may do."""

    secret: str
    scope: Scope = "admin"

    def __repr__(self) -> str:  # never print a secret in a log or a traceback
        return f"Token(scope={self.scope!r})"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything one gateway process needs; build with `from_env` to read the environment.

    Sizes in bytes, waits in seconds (`wait_timeout_ms` in ms). Raises `ConfigError` for a size that is
    not positive, a negative wait, a negative `wait_replicas`, or a `wait_timeout_ms` outside 1 to 10000.
    """

    redis_url: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8400
    tokens: tuple[Token, ...] = ()
    # Request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Params whose canonical JSON is over this are refused with 413, as runners refuse such results.
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    # No request waits longer than this for an execution, whatever it asks for.
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    # Deployment routes wait this long for the result before answering 202.
    route_wait_s: float = DEFAULT_ROUTE_WAIT_S
    # Server-sent event streams end after this long; clients reconnect with Last-Event-ID.
    max_stream_s: float = 3600.0
    cors_origins: tuple[str, ...] = ()
    # Connections of the asyncio client, per server (per node of a cluster).
    redis_max_connections: int = 1024
    # Replicas of each master that must confirm a write before the answer goes back (0: none).
    wait_replicas: int = 0
    wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ConfigError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.max_value_bytes <= 0:
            raise ConfigError(f"max_value_bytes must be positive, got {self.max_value_bytes}")
        if self.max_wait_s < 0 or self.route_wait_s < 0:
            raise ConfigError("wait limits must not be negative")
        if self.wait_replicas < 0:
            raise ConfigError(f"--wait-replicas must be 0 (wait for none) or more, got {self.wait_replicas}")
        # Checks the timeout, also while no replica is waited for: a bad value shows at once, not on first use.
        ReplicaWait(max(self.wait_replicas, 1), self.wait_timeout_ms)

    @property
    def replica_wait(self) -> ReplicaWait | None:
        """What the gateway's round trips that write wait for; None when they wait for no replica."""
        return ReplicaWait(self.wait_replicas, self.wait_timeout_ms) if self.wait_replicas > 0 else None

    @classmethod
    def from_env(
        cls,
        *,
        redis_url: str,
        data_dir: Path,
        tokens: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 8400,
        wait_replicas: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> GatewaySettings:
        """Settings from explicit values plus `DOLMEN_GATEWAY_TOKENS` / `DOLMEN_GATEWAY_CORS_ORIGINS`,
        `DOLMEN_MAX_VALUE_BYTES` (the body limit follows it: twice the value limit), and
        `DOLMEN_WAIT_REPLICAS` / `DOLMEN_WAIT_TIMEOUT_MS` where `wait_replicas` / `wait_timeout_ms` are None.

        `environ` defaults to `os.environ`. Raises `ConfigError` for a malformed token or variable, and as the
        constructor does."""
        env = os.environ if environ is None else environ
        specs = [*tokens, *_env_tokens(env)]
        origins = [*cors_origins, *_split(env.get(CORS_ENV, ""))]
        max_value_bytes = env_int(MAX_VALUE_ENV, env)
        return cls(
            redis_url=redis_url,
            data_dir=data_dir,
            host=host,
            port=port,
            tokens=parse_tokens(specs),
            cors_origins=tuple(dict.fromkeys(origins)),
            max_value_bytes=max_value_bytes,
            max_body_bytes=2 * max_value_bytes,
            wait_replicas=env_int(ENV_WAIT_REPLICAS, env) if wait_replicas is None else wait_replicas,
            wait_timeout_ms=env_int(ENV_WAIT_TIMEOUT_MS, env) if wait_timeout_ms is None else wait_timeout_ms,
        )

    def replace(self, **changes: object) -> GatewaySettings:
        """A copy with some fields changed, checked as a new one is (`ConfigError`)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def parse_tokens(specs: Iterable[str]) -> tuple[Token, ...]:
    """Parse `TOKEN[:SCOPE]` entries; a missing scope means admin.

    Raises `ConfigError` for a blank entry (it would leave the API open where a token was meant), an unknown
    scope, a character outside RFC 6750's b64token set (§2.1: letters, digits, `-._~+/=`), a token shorter
    than 8 characters, or a token given twice (which scope it has would be a guess).
    """
    out: list[Token] = []
    scopes: dict[str, str] = {}
    for spec in specs:
        spec = spec.strip()
        if not spec:
            raise ConfigError("an empty gateway token; give TOKEN or TOKEN:SCOPE, or no token at all for an open API")
        secret, sep, scope = spec.rpartition(":")
        if not sep:
            secret, scope = spec, "admin"
        elif scope not in SCOPES:
            raise ConfigError(f"unknown gateway token scope '{scope}'; use TOKEN, TOKEN:invoke or TOKEN:admin")
        if not _TOKEN_CHARS.match(secret):
            raise ConfigError(
                "a gateway token may only hold letters, digits and -._~+/= (RFC 6750 bearer token characters)"
            )
        if len(secret) < 8:
            raise ConfigError(
                f"a gateway token ({scope}) is {len(secret)} characters long; use at least 8 random characters"
            )
        if secret in scopes:
            raise ConfigError(
                f"a gateway token is given twice ({scopes[secret]} and {scope}); give each token once, with its scope"
            )
        scopes[secret] = scope
        out.append(Token(secret, scope))  # type: ignore[arg-type]
    return tuple(out)


def check_tokens_env(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a malformed `DOLMEN_GATEWAY_TOKENS` with the message a gateway would exit with (`platform up` checks it
    before starting anything, rather than run a gateway that exits and restarts forever).

    Raises `ConfigError` naming the variable and `parse_tokens`' reason; `environ` defaults to `os.environ`.
    """
    env = os.environ if environ is None else environ
    specs = _env_tokens(env)  # (its error names the variable already)
    try:
        parse_tokens(specs)
    except ConfigError as exc:
        raise ConfigError(f"{TOKENS_ENV}: {exc.message}; fix or unset it") from None


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _env_tokens(env: Mapping[str, str]) -> list[str]:
    """`DOLMEN_GATEWAY_TOKENS`' entries (`ConfigError` when it is set to commas and no token: the API would be open)."""
    text = env.get(TOKENS_ENV, "")
    specs = _split(text)
    if text.strip() and not specs:
        raise ConfigError(
            f"{TOKENS_ENV}={text!r} names no token, which would leave the API open; "
            "set TOKEN[:SCOPE] entries separated by commas, or unset it for an open API"
        )
    return specs
