"""Registries that require credentials (htpasswd basic auth)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dolmen.platform.errors import RegistryAuthError
from dolmen.registry.auth import Credentials
from dolmen.platform.wasm.cache import ComponentCache
from dolmen.registry.pull import fetch_component
from dolmen.registry.push import push_component
from tests.registry.conftest import FAST_RETRY, USERS
from tests.support.registry import RegistryForTests

pytestmark = pytest.mark.registry

ALICE = Credentials("alice", USERS["alice"])


def test_anonymous_access_is_refused_with_how_to_log_in(
    auth_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache
) -> None:
    """Without credentials, push and pull raise RegistryAuthError naming the host and how to pass credentials."""
    with pytest.raises(RegistryAuthError, match=rf"{auth_registry.host} requires authentication.*--username NAME --password-stdin.*docker login"):
        push_component(component_bytes, auth_registry.ref(repo, "v1"), cache, retry=FAST_RETRY)
    with pytest.raises(RegistryAuthError, match="requires authentication to pull"):
        fetch_component(auth_registry.ref(repo, "v1"), cache, retry=FAST_RETRY)


def test_wrong_password_is_refused(
    auth_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache
) -> None:
    """A wrong password raises RegistryAuthError naming the user and the 401."""
    wrong = Credentials("alice", "not-the-password")
    with pytest.raises(RegistryAuthError, match=r"refused the credentials of user 'alice'.*401 Unauthorized"):
        push_component(component_bytes, auth_registry.ref(repo, "v1"), cache, credentials=wrong, retry=FAST_RETRY)
    with pytest.raises(RegistryAuthError, match="401 Unauthorized"):
        fetch_component(auth_registry.ref(repo, "v1"), cache, credentials=wrong, retry=FAST_RETRY)


def test_explicit_credentials_push_and_pull(
    auth_registry: RegistryForTests, repo: str, component_bytes: bytes, cache: ComponentCache, other_cache: ComponentCache
) -> None:
    """The right username and password push and pull the component."""
    pushed = push_component(component_bytes, auth_registry.ref(repo, "v1"), cache, credentials=ALICE, retry=FAST_RETRY)
    fetched = fetch_component(auth_registry.ref(repo, "v1"), other_cache, credentials=ALICE, retry=FAST_RETRY)
    assert fetched.manifest_digest == pushed.manifest_digest
    assert other_cache.get(fetched.component_digest) == component_bytes


def test_docker_config_credentials_are_used(
    auth_registry: RegistryForTests,
    repo: str,
    component_bytes: bytes,
    cache: ComponentCache,
    other_cache: ComponentCache,
    isolated_docker_config: Path,
) -> None:
    """Credentials saved in $DOCKER_CONFIG/config.json for the host are used when none are given."""
    (isolated_docker_config / "config.json").write_text(
        json.dumps({"auths": {auth_registry.host: {"auth": ALICE.encoded()}}})
    )
    pushed = push_component(component_bytes, auth_registry.ref(repo, "v1"), cache, retry=FAST_RETRY)
    fetched = fetch_component(auth_registry.ref(repo, "v1"), other_cache, retry=FAST_RETRY)
    assert fetched.component_digest == pushed.component_digest


def test_wrong_docker_config_credentials_name_their_source(
    auth_registry: RegistryForTests, repo: str, cache: ComponentCache, isolated_docker_config: Path
) -> None:
    """A refused password from config.json is reported with the file it came from."""
    config = isolated_docker_config / "config.json"
    config.write_text(json.dumps({"auths": {f"http://{auth_registry.host}": {"auth": Credentials("alice", "old").encoded()}}}))
    with pytest.raises(RegistryAuthError, match=rf"user 'alice' \(from {config}\)"):
        fetch_component(auth_registry.ref(repo, "v1"), cache, retry=FAST_RETRY)
