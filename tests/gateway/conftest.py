"""One platform for every gateway test: a real Valkey, the test components deployed
with routes, a runner and a scheduler process, and an open gateway on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dolmen.platform.deploy.apply import Deployer
from dolmen.platform.model import ComponentConfig, Revision
from dolmen.platform.store.connection import connect
from tests.gateway.helpers import GatewayThread, Platform, deploy_test_components, settings_for
from tests.support.guests import DATA_DIR, build_guest


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A Valkey of the package's own with the test components deployed and services running.

    Not the session's: tests that empty that one (`redis_url`) must not take
    this deployment away from the tests after them, in whatever order they run
    (pytest-xdist gives each worker its own order).
    """
    # Imported here: at conftest import time it would import tests.support.platform before pytest rewrites its asserts.
    from tests.support.shared import valkey_like_the_session

    valkey = valkey_like_the_session(tmp_path_factory.mktemp("gateway-valkey"))
    valkey.start()
    try:
        revision = deploy_test_components(valkey.url)
        running = Platform(valkey.url, DATA_DIR, revision, tmp_path_factory.mktemp("gateway-logs"))
        running.start_services()
        try:
            yield running
        finally:
            running.stop_services()
    finally:
        valkey.stop()


@pytest.fixture(scope="package")
def gateway(platform: Platform) -> Iterator[GatewayThread]:
    """An open gateway (no tokens) with default limits."""
    server = GatewayThread(settings_for(platform)).start()
    yield server
    server.stop()


@pytest.fixture
def http(gateway: GatewayThread) -> Iterator[httpx.Client]:
    """An HTTP client for the open gateway."""
    with gateway.client() as client:
        yield client


@pytest.fixture
def start_gateway(platform: Platform) -> Iterator[Callable[..., GatewayThread]]:
    """Start gateways with other settings; they stop after the test."""
    started: list[GatewayThread] = []

    def start(**changes: Any) -> GatewayThread:
        server = GatewayThread(settings_for(platform, **changes)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def logs_dir(platform: Platform) -> Path:
    """Where the runner and scheduler write their logs (for debugging failures)."""
    return platform.logs


@pytest.fixture(scope="package")
def next_revision(platform: Platform) -> Revision:
    """A stored, inactive revision with wf-next (the same workflows, replay-compatible): a target for upgrade checks."""
    client = connect(platform.redis_url)
    try:
        deployer = Deployer(client, DATA_DIR)
        data = build_guest("wf-next", "workflows").read_bytes()
        config = deployer.prepare(ComponentConfig("wf", "workflow", "", "", {}), data).config
        return deployer.apply("gateway-tests-next", [(config, data)], activate=False)
    finally:
        client.close()
