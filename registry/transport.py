"""HTTP to one registry through oras-py, with Dolmen's retry, auth and error policy.

oras's `Registry.do_request` retries every exception up to five times with
sleeps of 3 s to 83 s and cannot answer a `Basic` challenge; `OrasSession`
replaces it with a short exponential backoff on connection errors and 5xx, a
preemptive credential header once a challenge was answered, and bearer tokens
through oras's own `TokenAuth`. Every `requests` exception is translated here;
nothing above this module sees one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import requests.exceptions
from oras.provider import Registry

from ..platform.backoff import Backoff
from ..platform.errors import RegistryAuthError, RegistryError, RegistryUnavailableError
from .auth import Credentials

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how fast to retry connection errors and 5xx/429 answers.

    `attempts` counts every try, the first included; delays and timeouts are in seconds.
    """

    attempts: int = 4
    initial_delay: float = 0.2
    max_delay: float = 2.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return Backoff(self.initial_delay, self.max_delay).delay(attempt)


class OrasSession(Registry):
    """An oras `Registry` bound to one host, with `do_request` replaced by Dolmen's policy."""

    def __init__(
        self,
        host: str,
        *,
        scheme: str,
        credentials: Credentials | None,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(hostname=host, insecure=(scheme == "http"), auth_backend="token")
        self.host = host
        self.scheme = scheme
        self.credentials = credentials
        self.retry = retry
        self._sleep = sleep
        self._auth_header: dict[str, str] = {}
        if credentials is not None:
            self.auth.set_basic_auth(credentials.username, credentials.password)

    @property
    def base_url(self) -> str:
        """`scheme://host`, as the user should see it in messages."""
        return f"{self.scheme}://{self.host}"

    def do_request(  # type: ignore[override]  # oras's signature, without its retry decorator
        self,
        url: str,
        method: str = "GET",
        data: dict[str, Any] | bytes | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send a request, retrying connection errors and 5xx/429 with exponential backoff (`RetryPolicy`).

        Returns the last response, whatever its status (`check` judges it).
        Raises `RegistryUnavailableError` when the registry cannot be reached
        after `retry.attempts` tries, `RegistryError` for a TLS failure or
        another `requests` error.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send_authenticated(method, url, dict(headers or {}), data, json, stream)
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"TLS with the OCI registry at {self.base_url} failed ({_short(exc)}); if this registry "
                    "serves plain HTTP, pass --insecure (insecure=True)",
                    host=self.host,
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt >= self.retry.attempts:
                    raise RegistryUnavailableError(
                        f"cannot reach the OCI registry at {self.base_url} after {attempt} attempts "
                        f"({_short(exc)}); check the address and that the registry is running"
                    ) from None
                self._sleep(self.retry.delay(attempt))
                continue
            except requests.exceptions.RequestException as exc:
                raise RegistryError(f"request to the OCI registry at {self.base_url} failed: {_short(exc)}") from None
            if response.status_code in RETRYABLE_STATUS and attempt < self.retry.attempts:
                response.close()
                self._sleep(self.retry.delay(attempt))
                continue
            return response

    def _send_authenticated(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: dict[str, Any] | bytes | None,
        json: dict[str, Any] | None,
        stream: bool,
    ) -> requests.Response:
        """Send once; on a 401 challenge we can answer, answer it and send once more."""

        def send(extra: dict[str, str]) -> requests.Response:
            return self.session.request(
                method,
                url,
                data=data,
                json=json,
                headers={**headers, **extra},
                stream=stream,
                verify=self._tls_verify,
                timeout=(self.retry.connect_timeout, self.retry.read_timeout),
            )

        response = send(self._auth_header)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme = challenge.split(" ", 1)[0].lower()
        new_header: dict[str, str] | None = None
        if scheme == "basic" and self.credentials is not None:
            candidate = {"Authorization": self.credentials.basic_header()}
            if candidate != self._auth_header:  # sending the same password again is pointless
                new_header = candidate
        elif scheme == "bearer":
            # oras's TokenAuth fetches a token for the challenge's scope (anonymous or with basic auth).
            answered, changed = self.auth.authenticate_request(response, {}, refresh=True)
            token = answered.get("Authorization") if changed else None
            if isinstance(token, str):
                new_header = {"Authorization": token}
        if new_header is None:
            return response
        response.close()
        self._auth_header = new_header
        return send(new_header)

    def check(self, response: requests.Response, action: str, *, repository: str) -> None:
        """Raise the Dolmen error for a failed answer (not 404, which callers word themselves).

        `RegistryAuthError` for 401 and 403, `RegistryUnavailableError` for 5xx
        and 429, `RegistryError` for another status of 400 or more.
        """
        status = response.status_code
        if status < 400:
            return
        detail = registry_error_detail(response)
        if status == 401:
            if self.credentials is None:
                raise RegistryAuthError(
                    f"the OCI registry {self.host} requires authentication to {action} {repository}; "
                    f"pass --username NAME --password-stdin, or log in with `docker login {self.host}` "
                    "(credentials in $DOCKER_CONFIG/config.json or ~/.docker/config.json are used)",
                    host=self.host,
                )
            raise RegistryAuthError(
                f"the OCI registry {self.host} refused the credentials of user '{self.credentials.username}' "
                f"(from {self.credentials.source}) to {action} {repository} (401 Unauthorized{detail}); "
                "check the username and password, or log in again",
                host=self.host,
            )
        if status == 403:
            who = f"user '{self.credentials.username}'" if self.credentials else "anonymous access"
            raise RegistryAuthError(
                f"the OCI registry {self.host} denied {who} permission to {action} {repository} "
                f"(403 Forbidden{detail}); use credentials that have this permission",
                host=self.host,
            )
        if status >= 500 or status == 429:
            raise RegistryUnavailableError(
                f"the OCI registry at {self.base_url} kept failing to {action} {repository} "
                f"(HTTP {status}{detail}) after {self.retry.attempts} attempts; try again later",
                host=self.host,
            )
        raise RegistryError(
            f"the OCI registry {self.host} refused to {action} {repository}: HTTP {status}{detail}",
            host=self.host,
        )

    @contextmanager
    def reading(self, what: str) -> Iterator[None]:
        """Translate `requests` errors raised while a streamed body is read into `RegistryUnavailableError`."""
        try:
            yield
        except requests.exceptions.RequestException as exc:
            raise RegistryUnavailableError(
                f"the connection to the OCI registry at {self.base_url} broke while reading {what} "
                f"({_short(exc)}); try again"
            ) from None


def registry_error_detail(response: requests.Response) -> str:
    """`: CODE message` from the first error of the registry's JSON error body (the distribution spec's
    `{"errors": [{"code", "message"}]}`), or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    first = errors[0]
    return f": {first.get('code', '')} {first.get('message', '')}".rstrip()


def registry_error_codes(response: requests.Response) -> set[str]:
    """The `code`s of the registry's JSON error body (e.g. MANIFEST_UNKNOWN, NAME_UNKNOWN)."""
    try:
        body = response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("code")) for e in errors if isinstance(e, dict)}


def _short(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, e.g. 'Connection refused'."""
    text = str(exc)
    for marker in ("Errno 111] ", "Errno 113] ", "Errno -2] ", "Errno -3] "):
        if marker in text:
            return text.split(marker, 1)[1].split("'", 1)[0].rstrip(")")
    return text if len(text) < 200 else text[:200] + "..."
