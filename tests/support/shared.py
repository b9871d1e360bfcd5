"""One platform shared by the tests of a module: a Valkey of its own, a runner and a scheduler process, a gateway.

The Valkey is a cluster with DOLMEN_TEST_CLUSTER=1, as the session's is (tests/conftest.py).

Starting and stopping real processes costs seconds per test; a module whose tests
only submit their own executions (each test creates its own, with fresh ids) shares
one platform instead. Between tests, `settle_leftovers` cancels whatever a test left
unfinished and resumes paused functions, so that the next test starts with empty
queues, as it would on a store of its own.

Use it from a test module like this:

    @pytest.fixture(scope="module")
    def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
        with shared_platform(tmp_path_factory.mktemp("shared"), COMPONENTS) as platform:
            yield platform

    @pytest.fixture
    def redis_url(shared: SharedPlatform) -> Iterator[str]:  # (overrides the session one: no flush)
        yield shared.url
        settle_leftovers(shared.url)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dolmen.gateway.settings import GatewaySettings
from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig
from tests.gateway.helpers import GatewayThread
from tests.support.cluster import ValkeyClusterForTests
from tests.support.guests import DATA_DIR
from tests.support.platform import Processes, deploy
from tests.support.polling import wait_for
from tests.support.servers import ValkeyForTests


@dataclass
class SharedPlatform:
    """A module's Valkey, its runner and scheduler processes, and (if asked for) a gateway on loopback."""

    valkey: ValkeyForTests | ValkeyClusterForTests
    processes: Processes
    gateway: GatewayThread | None

    @property
    def url(self) -> str:
        return self.valkey.url


def valkey_like_the_session(work_dir: Path) -> ValkeyForTests | ValkeyClusterForTests:
    """A Valkey (not started yet) of its own under `work_dir`, like the session's (tests/conftest.py): a cluster with DOLMEN_TEST_CLUSTER=1."""
    if os.environ.get("DOLMEN_TEST_CLUSTER", "") not in ("", "0"):
        return ValkeyClusterForTests(work_dir / "valkey-cluster")
    return ValkeyForTests(work_dir / "valkey")


@contextmanager
def shared_platform(
    work_dir: Path,
    components: list[tuple[ComponentConfig, Path]],
    *,
    env: dict[str, str] | None = None,
    runner_args: tuple[str, ...] = (),
    gateway: bool = True,
) -> Iterator[SharedPlatform]:
    """A Valkey of its own with `components` deployed, a runner (with `runner_args`), a scheduler (both with `env`)
    and a gateway; all stopped at the end."""
    valkey = valkey_like_the_session(work_dir)
    valkey.start()
    processes = Processes(valkey.url, work_dir, env=dict(env or {}))
    server: GatewayThread | None = None
    try:
        deploy(valkey.url, components)
        processes.runner(*runner_args)
        processes.scheduler()
        processes.wait_ready()
        if gateway:
            server = GatewayThread(GatewaySettings(redis_url=valkey.url, data_dir=DATA_DIR)).start()
        yield SharedPlatform(valkey, processes, server)
    finally:
        if server is not None:
            server.stop()
        processes.stop()
        valkey.stop()


def settle_leftovers(url: str, timeout: float = 60.0) -> None:
    """Resume every paused function, cancel every execution still unfinished, and wait until they have ended.

    An external execution that a worker holds a lease on ends only at the worker's next heartbeat; cancelled,
    it is never handed to a worker again (a claim that takes it over finishes it), so it is not waited for.
    """
    client = Client.connect(url)
    try:
        for ffqn in client.paused_functions():
            client.resume_function(ffqn)

        def unfinished() -> list[str]:
            states, _ = client.executions.list(active_only=True, limit=10_000)
            return [s.id for s in states if not (s.cancel_requested and (s.owner or "").startswith("worker:"))]

        for execution_id in unfinished():
            try:
                client.cancel(execution_id, "left over by a test")
            except Exception:  # noqa: BLE001 - it may have finished meanwhile, or be a child cancelled with its parent
                pass
        wait_for(lambda: not unfinished(), timeout=timeout, what="the executions a test left to end")
    finally:
        client.close()
