"""Fixtures for registry tests: real docker-registry servers and a tiny real component."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from dolmen.platform.wasm.cache import ComponentCache
from dolmen.registry.transport import RetryPolicy
from tests.support.registry import RegistryForTests, registry_binary

# A real component: one exported interface instance and one imported one.
CALC_WAT = """
(component
  (import "demo:clock/ticker@1.0.0" (instance $ticker (export "tick" (func))))
  (core module $m
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  (core instance $i (instantiate $m))
  (func $add (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add")))
  (instance $calc (export "add" (func $add)))
  (export "demo:calc/math@1.0.0" (instance $calc))
)
"""

USERS = {"alice": "s3cret-pass"}
FAST_RETRY = RetryPolicy(attempts=3, initial_delay=0.02, max_delay=0.1, connect_timeout=2.0, read_timeout=10.0)

_names = itertools.count()


def _require_registry() -> None:
    if registry_binary() is None:
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry)")


@pytest.fixture(autouse=True)
def isolated_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point DOCKER_CONFIG at an empty folder so the developer's own credentials never leak in."""
    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return folder


@pytest.fixture(scope="session")
def component_bytes() -> bytes:
    """A tiny real WebAssembly component built from WAT."""
    return bytes(wasmtime.wat2wasm(CALC_WAT))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryForTests]:
    """One anonymous registry for the session; tests use distinct repositories."""
    _require_registry()
    server = RegistryForTests(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryForTests]:
    """A registry with htpasswd auth for user alice."""
    _require_registry()
    pytest.importorskip("bcrypt", reason="bcrypt is needed to write the htpasswd file (pip install bcrypt)")
    server = RegistryForTests(tmp_path_factory.mktemp("auth-registry"), users=USERS)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryForTests]:
    """A registry for one test, free to stop or tamper with."""
    _require_registry()
    server = RegistryForTests(tmp_path / "own-registry")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def repo() -> str:
    """A repository name no other test uses."""
    return f"dolmen/test-{next(_names)}"


@pytest.fixture
def cache(tmp_path: Path) -> ComponentCache:
    """An empty component cache (a fresh data directory)."""
    return ComponentCache(tmp_path / "data")


@pytest.fixture
def other_cache(tmp_path: Path) -> ComponentCache:
    """A second empty data directory, e.g. the machine that pulls."""
    return ComponentCache(tmp_path / "other-data")
