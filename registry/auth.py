"""Registry credentials: explicit flags, or the standard Docker config file.

Lookup order for a registry host: credentials given explicitly (e.g.
`--username` + `--password-stdin`), then `auths.<host>.auth` in
`$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), then a
`credHelpers`/`credsStore` helper named there; otherwise anonymous. A helper
is run as `docker-credential-NAME get`, the protocol of
https://github.com/docker/docker-credential-helpers (host on stdin, JSON
`{"Username", "Secret"}` on stdout).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..platform.errors import ConfigError

# Docker Hub's credentials are stored under its legacy index URL.
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HELPER_TIMEOUT_S = 15


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password (or token) for HTTP basic auth; the password never appears in repr."""

    username: str
    password: str = field(repr=False)
    source: str = "flags"

    def basic_header(self) -> str:
        """The value of an `Authorization: Basic ...` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def encoded(self) -> str:
        """base64 `user:pass`, as Docker's config.json stores it."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


def docker_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    env = os.environ if environ is None else environ
    folder = env.get("DOCKER_CONFIG")
    if folder:
        return Path(folder) / "config.json"
    return Path.home() / ".docker" / "config.json"


def resolve_credentials(
    host: str,
    explicit: Credentials | None = None,
    *,
    config_path: Path | None = None,
) -> Credentials | None:
    """Credentials for `host` (HOST[:PORT]): explicit ones, else Docker config ones, else None.

    Raises `ConfigError` as `credentials_from_docker_config` does.
    """
    if explicit is not None:
        return explicit
    return credentials_from_docker_config(host, config_path or docker_config_path())


def credentials_from_docker_config(host: str, path: Path) -> Credentials | None:
    """Read `host`'s credentials from a Docker config file; None if the file or the entry is absent.

    Raises `ConfigError` when the file cannot be read or is not a JSON object,
    an `auth` entry is not base64 of `user:password`, or a credential helper
    does not answer within 15 s or answers something other than its JSON.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the Docker config file {path}: {exc.strerror or exc}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the Docker config file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
            "fix it or point DOCKER_CONFIG at another folder"
        ) from None
    if not isinstance(config, dict):
        raise ConfigError(f"the Docker config file {path} must hold a JSON object")
    wanted = _host_keys(host)
    auths = config.get("auths") or {}
    if isinstance(auths, dict):
        for key, entry in auths.items():
            if _normalize_host(str(key)) in wanted and isinstance(entry, dict):
                found = _entry_credentials(entry, host, path)
                if found is not None:
                    return found
    helper = _helper_for(config, wanted)
    if helper is not None:
        return _credentials_from_helper(helper, host)
    return None


def _entry_credentials(entry: dict[str, Any], host: str, path: Path) -> Credentials | None:
    encoded = entry.get("auth")
    if encoded:
        try:
            decoded = base64.b64decode(str(encoded), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise ConfigError(
                f"the credentials for {host} in {path} are malformed: 'auth' must be base64 of 'username:password'; "
                f"run `docker login {host}` again or fix the entry"
            )
        return Credentials(username, password, source=str(path))
    username, password = entry.get("username"), entry.get("password")
    if isinstance(username, str) and isinstance(password, str) and username:
        return Credentials(username, password, source=str(path))
    return None


def _helper_for(config: dict[str, Any], wanted: set[str]) -> str | None:
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _normalize_host(str(key)) in wanted and isinstance(name, str) and name:
                return name
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _credentials_from_helper(helper: str, host: str) -> Credentials | None:
    """Ask `docker-credential-<helper> get`; a missing helper or unknown host means anonymous."""
    binary = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [binary, "get"],
            input=host.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the credential helper {binary} did not answer within {_HELPER_TIMEOUT_S}s for {host}") from None
    if proc.returncode != 0:
        return None  # helpers exit non-zero for "credentials not found"
    try:
        payload = json.loads(proc.stdout)
        username, secret = payload["Username"], payload["Secret"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"the credential helper {binary} answered something other than its JSON for {host}") from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise ConfigError(f"the credential helper {binary} answered a non-string username or secret for {host}")
    return Credentials(username, secret, source=binary)


def _normalize_host(key: str) -> str:
    """`https://host:port/v1/` -> `host:port` (Docker config keys come in several spellings)."""
    key = key.strip()
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme):]
            break
    return key.split("/", 1)[0].lower()


def _host_keys(host: str) -> set[str]:
    host = host.lower()
    if host in _DOCKER_HUB_ALIASES:
        return set(_DOCKER_HUB_ALIASES)
    return {host}
