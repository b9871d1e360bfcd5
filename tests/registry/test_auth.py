"""Finding registry credentials: flags first, then the Docker config file."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from dolmen.platform.errors import ConfigError
from dolmen.registry.auth import (
    Credentials,
    credentials_from_docker_config,
    docker_config_path,
    resolve_credentials,
)


def _write_config(folder: Path, config: dict[str, object]) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_docker_config_env_var_decides_the_path(tmp_path: Path) -> None:
    """DOCKER_CONFIG names the folder of config.json; otherwise it is ~/.docker."""
    assert docker_config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert docker_config_path({}) == Path.home() / ".docker" / "config.json"


def test_auths_entry_is_decoded(tmp_path: Path) -> None:
    """`auths.<host>.auth` is base64 `user:pass`, and a password may contain colons."""
    path = _write_config(tmp_path, {"auths": {"127.0.0.1:5000": {"auth": _auth("bob", "a:b:c")}}})
    creds = credentials_from_docker_config("127.0.0.1:5000", path)
    assert creds is not None and (creds.username, creds.password) == ("bob", "a:b:c")
    assert creds.source == str(path)


def test_url_spelled_keys_match_the_host(tmp_path: Path) -> None:
    """Keys written as URLs (`https://host/v1/`) match the bare host."""
    path = _write_config(tmp_path, {"auths": {"https://Registry.Example.com/v1/": {"auth": _auth("u", "p")}}})
    assert credentials_from_docker_config("registry.example.com", path) == Credentials("u", "p", str(path))


def test_docker_hub_aliases_share_credentials(tmp_path: Path) -> None:
    """Credentials saved for index.docker.io serve docker.io too."""
    path = _write_config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": _auth("u", "p")}}})
    assert credentials_from_docker_config("docker.io", path) is not None


def test_other_hosts_and_missing_file_give_none(tmp_path: Path) -> None:
    """No entry for the host, or no file at all, means anonymous."""
    path = _write_config(tmp_path, {"auths": {"other:5000": {"auth": _auth("u", "p")}}})
    assert credentials_from_docker_config("127.0.0.1:5000", path) is None
    assert credentials_from_docker_config("127.0.0.1:5000", tmp_path / "absent.json") is None


def test_explicit_credentials_win(tmp_path: Path) -> None:
    """Credentials from flags are used even when the config has some."""
    path = _write_config(tmp_path, {"auths": {"h:1": {"auth": _auth("cfg", "x")}}})
    explicit = Credentials("flag", "y")
    assert resolve_credentials("h:1", explicit, config_path=path) is explicit
    found = resolve_credentials("h:1", None, config_path=path)
    assert found is not None and found.username == "cfg"


def test_malformed_auth_is_a_config_error(tmp_path: Path) -> None:
    """An `auth` value that is not base64 `user:pass` names the file and the fix."""
    path = _write_config(tmp_path, {"auths": {"h:1": {"auth": "!!!"}}})
    with pytest.raises(ConfigError, match=r"docker login h:1"):
        credentials_from_docker_config("h:1", path)


def test_invalid_json_is_a_config_error(tmp_path: Path) -> None:
    """A config file that is not JSON is reported with its path."""
    path = tmp_path / "config.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        credentials_from_docker_config("h:1", path)


def test_credential_helper_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `credHelpers` entry runs docker-credential-<name> get with the host on stdin."""
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread host\necho "{\\"Username\\": \\"helper-user\\", \\"Secret\\": \\"pw-$host\\"}"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    path = _write_config(tmp_path, {"credHelpers": {"h:1": "fake"}})
    creds = credentials_from_docker_config("h:1", path)
    assert creds is not None and (creds.username, creds.password) == ("helper-user", "pw-h:1")


def test_password_is_hidden_from_repr() -> None:
    """A Credentials repr never shows the password."""
    assert "hunter2" not in repr(Credentials("u", "hunter2"))
