"""A running platform for gateway tests: deployed test components, real runner and
scheduler processes, and gateways served by uvicorn on loopback in a thread."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from dolmen.gateway.app import create_app
from dolmen.gateway.server import uvicorn_options
from dolmen.gateway.settings import GatewaySettings
from dolmen.platform.deploy.apply import Deployer
from dolmen.platform.model import ComponentConfig, Revision, RouteSpec
from dolmen.platform.store.connection import connect
from dolmen.platform.store.deployments import DeploymentStore
from tests.support.guests import DATA_DIR, build_guest
from tests.support.polling import wait_for

PLATFORM = str(Path(sys.executable).with_name("platform"))
ACT = "testing:act/basic@1.0.0"
WF = "testing:wf/flows@1.0.0"

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/double/{x}", f"{ACT}.double"),
    RouteSpec("GET", "/slow", f"{ACT}.slow"),
    RouteSpec("POST", "/slow/{tag}", f"{ACT}.slow"),
    RouteSpec("GET", "/maybe/{fail}", f"{ACT}.maybe"),
    RouteSpec("GET", "/env/{name}", f"{ACT}.env"),
    RouteSpec("POST", "/serial", f"{WF}.serial"),
    RouteSpec("GET", "/sleepy/{ms}", f"{WF}.sleepy"),
    RouteSpec("GET", "/crash", f"{ACT}.crash"),
)


@dataclass
class Platform:
    """Valkey + a deployed revision + runner and scheduler processes."""

    redis_url: str
    data_dir: Path
    revision: Revision
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        """A `platform` command line for this platform's Redis and data directory."""
        return [PLATFORM, "--redis", self.redis_url, "--data-dir", str(self.data_dir), *args]

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `platform ARGS` with its output in `logs/NAME.log`."""
        with open(self.logs / f"{name}.log", "wb") as out:
            return subprocess.Popen(self.command(*args), stdout=out, stderr=subprocess.STDOUT, env=env)

    def start_services(self, runner_concurrency: int = 8) -> None:
        self.procs.append(self.spawn("runner", "runner", "--concurrency", str(runner_concurrency)))
        self.procs.append(self.spawn("scheduler", "scheduler"))

    def stop_services(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def put_routes(self, routes: tuple[RouteSpec, ...]) -> Revision:
        """Activate a new revision with the same components and other routes."""
        client = connect(self.redis_url)
        try:
            base = self.revision
            return DeploymentStore(client).put_revision(
                lambda n: Revision(n, base.name, base.created_at, base.components, routes, base.source)
            )
        finally:
            client.close()

    def activate(self, number: int) -> None:
        client = connect(self.redis_url)
        try:
            DeploymentStore(client).activate(number)
        finally:
            client.close()


def deploy_test_components(redis_url: str) -> Revision:
    """Deploy act-basic and wf-basic with `ROUTES` (compiled artifacts are cached across runs)."""
    act = build_guest("act-basic", "activities")
    wf = build_guest("wf-basic", "workflows")
    client = connect(redis_url)
    try:
        return Deployer(client, DATA_DIR).deploy_files(
            "gateway-tests",
            [(ComponentConfig("act", "activity", "", "", {}), act), (ComponentConfig("wf", "workflow", "", "", {}), wf)],
            ROUTES,
        )
    finally:
        client.close()


class GatewayThread:
    """A real uvicorn server for `create_app(settings)` on 127.0.0.1 and a free port."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.settings = settings.replace(port=self.port)
        config = uvicorn.Config(create_app(self.settings), lifespan="on", **uvicorn_options())
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayThread:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, what="the gateway to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for this gateway (no proxies from the environment)."""
        return httpx.Client(base_url=self.url, timeout=60.0, trust_env=False, **kwargs)


def settings_for(platform: Platform, **changes: Any) -> GatewaySettings:
    return GatewaySettings(redis_url=platform.redis_url, data_dir=platform.data_dir).replace(**changes)


@contextmanager
def gateway_process(platform: Platform, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`platform gateway ARGS` as its own process on a free port; yields its URL once healthy."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = platform.spawn(f"gateway-{port}", "gateway", "--port", str(port), *args, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(trust_env=False) as http:

            def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError((platform.logs / f"gateway-{port}.log").read_text())
                try:
                    return http.get(f"{url}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, timeout=30, what="the gateway process to answer")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
