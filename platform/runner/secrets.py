"""Secrets for activities: resolved where the runner runs, for each attempt, and never written.

A deployment's env value `{secret: NAME}` stores only NAME in the revision.
For every attempt of such an activity the runner looks NAME up, in order:

1. its environment variable `DOLMEN_SECRET_<NAME>` (NAME upper-cased, '-' as
   '_': `payments-token` is `DOLMEN_SECRET_PAYMENTS_TOKEN`);
2. the file named by `DOLMEN_SECRETS_FILE`: a YAML mapping `NAME: value`,
   each value read as the text written (`0755` stays '0755'); the file is
   read again whenever it changes, so a rotated secret needs no restart.

`Masker` then replaces every resolved value with `***` in what the attempt
writes (captured stdout/stderr and failure messages). Results are the
guest's data and are written as returned.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from ..model import SECRET_NAME_HINT, SECRET_NAME_RE, EnvValue
from ..errors import SecretUnavailableError

SECRET_ENV_PREFIX = "DOLMEN_SECRET_"
SECRETS_FILE_ENV = "DOLMEN_SECRETS_FILE"
MASK = "***"


def secret_env_var(name: str) -> str:
    """The runner's environment variable that holds secret `name`: `payments-token` -> DOLMEN_SECRET_PAYMENTS_TOKEN."""
    return SECRET_ENV_PREFIX + name.upper().replace("-", "_")


class SecretSource(Protocol):
    """Where a runner finds secret values."""

    def lookup(self, name: str) -> str:
        """The value of secret `name`; `SecretUnavailableError` naming how to provide it otherwise."""
        ...


class RunnerSecrets:
    """Secrets from the runner's environment, then from the `DOLMEN_SECRETS_FILE` file (see the module)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        text = self._environ.get(SECRETS_FILE_ENV, "").strip()
        self.file = _SecretsFile(Path(text).expanduser().absolute()) if text else None

    def check(self) -> None:
        """Read the secrets file now, if one is named: a service refuses to start on a bad one (`SecretUnavailableError`)."""
        if self.file is not None:
            self.file.values()

    def lookup(self, name: str) -> str:
        """The value of secret `name`, from the environment, else the file.

        Raises `SecretUnavailableError` when it is empty in the environment, in
        neither place, or the file cannot be read or parsed.
        """
        variable = secret_env_var(name)
        value = self._environ.get(variable)
        if value is not None:
            if not value:
                raise SecretUnavailableError(
                    f"secret '{name}' is empty in the runner's environment variable {variable}; give it a value or unset it",
                    secret=name,
                )
            return value
        if self.file is not None:
            value = self.file.values().get(name)
            if value is not None:
                return value
        where = (
            f"add `{name}: ...` to {self.file.path} (named by {SECRETS_FILE_ENV})"
            if self.file is not None
            else f"name a YAML file of `{name}: ...` in {SECRETS_FILE_ENV}"
        )
        raise SecretUnavailableError(
            f"secret '{name}' is not available on this runner: set {variable} in the runner's environment, or {where}",
            secret=name,
        )


class _SecretsFile:
    """A YAML mapping of secret name to value, read again when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._values: dict[str, str] = {}

    def values(self) -> dict[str, str]:
        try:
            stat = self.path.stat()
            seen = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            with self._lock:
                if seen != self._seen:
                    self._values = self._parse(self.path.read_text(encoding="utf-8"))
                    self._seen = seen
                return self._values
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise SecretUnavailableError(
                f"cannot read the secrets file {self.path} (named by {SECRETS_FILE_ENV}): {reason}; "
                f"fix the path or the file's permissions, or unset {SECRETS_FILE_ENV}"
            ) from None

    def _parse(self, text: str) -> dict[str, str]:
        bad = f"the secrets file {self.path} (named by {SECRETS_FILE_ENV})"
        try:
            # BaseLoader reads every value as the text written (YAML 1.1 would make `0755` 493, `no` false).
            data = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader builds only str, list, dict
        except yaml.MarkedYAMLError as exc:
            # Only the line and the kind of problem: PyYAML's own message quotes the file's text.
            mark = exc.problem_mark or exc.context_mark
            line = f" at line {mark.line + 1}" if mark is not None else ""
            raise SecretUnavailableError(f"{bad} is not valid YAML{line}: {exc.problem or exc.context}; fix its syntax") from None
        except yaml.YAMLError:
            raise SecretUnavailableError(f"{bad} is not valid YAML; fix its syntax") from None
        if data is None or data == "":
            return {}
        if not isinstance(data, dict):
            raise SecretUnavailableError(f"{bad} must be a YAML mapping of `name: value` lines")
        out: dict[str, str] = {}
        for key, value in data.items():  # pyright: ignore[reportUnknownVariableType]
            if not isinstance(key, str) or not SECRET_NAME_RE.match(key):
                raise SecretUnavailableError(f"{bad}: the key {key!r} is not a secret name; {SECRET_NAME_HINT}")
            if not isinstance(value, str):
                raise SecretUnavailableError(f"{bad}: the value of '{key}' is not one piece of text; write it as a string")
            if not value:
                raise SecretUnavailableError(f"{bad}: the value of '{key}' is empty; give it a value or remove the line")
            out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class Masker:
    """Replaces secret values with `***` in text an attempt writes."""

    values: tuple[str, ...] = field(default=(), repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.values:
            # Longest first, so a secret that contains another is masked whole; one pass, so `***` is never re-matched.
            alternatives = "|".join(re.escape(v) for v in sorted(set(self.values), key=len, reverse=True))
            object.__setattr__(self, "_pattern", re.compile(alternatives))

    def text(self, text: str) -> str:
        """`text` with every secret value replaced by `***`."""
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    def output(self, output: dict[str, str] | None) -> dict[str, str] | None:
        """Captured streams (`{"stdout": ..., "stderr": ...}`) with every secret masked."""
        if output is None or self._pattern is None:
            return output
        return {stream: self.text(text) for stream, text in output.items()}


def resolve_env(env: Mapping[str, EnvValue], source: SecretSource) -> tuple[dict[str, str], Masker]:
    """The environment to give the guest, secrets looked up, and a masker for their values.

    Raises `SecretUnavailableError` naming the variable when a secret cannot be resolved.
    """
    resolved: dict[str, str] = {}
    secrets: list[str] = []
    for variable, value in env.items():
        if isinstance(value, str):
            resolved[variable] = value
            continue
        try:
            secret = source.lookup(value.name)
        except SecretUnavailableError as exc:
            raise SecretUnavailableError(f"env {variable}: {exc.message}", secret=value.name) from None
        resolved[variable] = secret
        secrets.append(secret)
    return resolved, Masker(tuple(secrets))
