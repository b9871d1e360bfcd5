"""Tuning variables from the environment: defaults, and one clear error for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.config import ENV_INTS, check_env, env_int
from dolmen.platform.errors import ConfigError
from tests.support.cli import run_platform


def test_defaults_apply_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_INTS:
        monkeypatch.delenv(name, raising=False)
    assert env_int("DOLMEN_INLINE_HOLD_MS") == 100 and env_int("DOLMEN_SPARE_INSTANCES") == 0
    monkeypatch.setenv("DOLMEN_SPARE_INSTANCES", " 2 ")
    assert env_int("DOLMEN_SPARE_INSTANCES") == 2


@pytest.mark.parametrize(("name", "value"), [("DOLMEN_SPARE_INSTANCES", "two"), ("DOLMEN_INLINE_HOLD_MS", "-5"), ("DOLMEN_LOCK_TTL_MS", "1.5")])
def test_a_bad_value_names_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        check_env()
    assert name in str(caught.value) and repr(value) in str(caught.value) and "fix or unset it" in str(caught.value)


def test_platform_up_refuses_a_bad_value_before_starting_anything(tmp_path: Path) -> None:
    """Not a crash loop of runners: `platform up` exits 2 with one line."""
    proc = run_platform("--data-dir", str(tmp_path / "d"), "up", env={"DOLMEN_SPARE_INSTANCES": "two"})
    assert proc.returncode == 2, proc.stderr
    assert "DOLMEN_SPARE_INSTANCES='two' is not valid" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d" / "platform.json").exists()


def test_platform_up_refuses_an_unreadable_secrets_file_before_starting_anything(tmp_path: Path) -> None:
    """A DOLMEN_SECRETS_FILE that cannot be read stops `platform up` with one line, not every attempt later."""
    missing = tmp_path / "secrets.yaml"
    proc = run_platform("--data-dir", str(tmp_path / "d"), "up", env={"DOLMEN_SECRETS_FILE": str(missing)})
    assert proc.returncode == 2, proc.stderr
    assert f"cannot read the secrets file {missing} (named by DOLMEN_SECRETS_FILE): No such file or directory" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d" / "platform.json").exists()


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ("tok1:invoke,tok2", "a gateway token (invoke) is 4 characters long; use at least 8 random characters"),
        ("k7Qm2xVb9RtL:reader", "unknown gateway token scope 'reader'"),
        ("k7Qm2x Vb9RtL", "a gateway token may only hold letters, digits and -._~+/="),
    ],
)
def test_platform_up_refuses_bad_gateway_tokens_before_starting_anything(tmp_path: Path, tokens: str, message: str) -> None:
    """A short or malformed DOLMEN_GATEWAY_TOKENS stops `platform up` with the gateway's own message, not a restart loop."""
    proc = run_platform("--data-dir", str(tmp_path / "d"), "up", env={"DOLMEN_GATEWAY_TOKENS": tokens})
    assert proc.returncode == 2, proc.stderr
    assert f"DOLMEN_GATEWAY_TOKENS: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d" / "platform.json").exists()
