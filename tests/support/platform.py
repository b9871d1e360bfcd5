"""Real platform processes for tests: runners and schedulers as subprocesses.

The processes are started the way `platform up` starts them
(`python -m dolmen.platform.cli.main ... runner`), share the test suite's
compiled-component cache, and can be killed with any signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.deploy.apply import Deployer
from dolmen.platform.model import ComponentConfig, Revision, RouteSpec
from dolmen.platform.store.heartbeats import read_processes
from dolmen.platform.store.connection import connect
from tests.support.guests import DATA_DIR, build_guest
from tests.support.polling import wait_for

ACTIVITIES = ("act-basic", "activities")
WORKFLOWS = ("wf-basic", "workflows")


def deploy(redis_url: str, components: list[tuple[ComponentConfig, Path]], routes: tuple[RouteSpec, ...] = ()) -> Revision:
    """Store a revision with these components (compiled through the shared test cache)."""
    client = connect(redis_url)
    try:
        return Deployer(client, DATA_DIR).deploy_files("test", components, routes)
    finally:
        client.close()


def activity(name: str = "act", **settings: object) -> tuple[ComponentConfig, Path]:
    """The act-basic activity component with deployment settings."""
    return ComponentConfig(name, "activity", "", "tests/components/act-basic", {}, **settings), build_guest(*ACTIVITIES)  # type: ignore[arg-type]


def workflow(name: str = "wf", **settings: object) -> tuple[ComponentConfig, Path]:
    """The wf-basic workflow component with deployment settings."""
    return ComponentConfig(name, "workflow", "", "tests/components/wf-basic", {}, **settings), build_guest(*WORKFLOWS)  # type: ignore[arg-type]


@dataclass
class Processes:
    """Runner and scheduler subprocesses against one Redis."""

    redis_url: str
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # The shared compiled cache; a test whose processes delete files there (`platform gc`) gives its own.
    data_dir: Path = DATA_DIR

    def _start(self, command: str, *args: str) -> subprocess.Popen[bytes]:
        index = len(self.procs)
        log = open(self.log_dir / f"{command}-{index}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "dolmen.platform.cli.main", "--redis", self.redis_url, "--data-dir", str(self.data_dir),
             "--log-format", "json", command, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def runner(self, *args: str) -> subprocess.Popen[bytes]:
        return self._start("runner", *args)

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self._start("scheduler")

    def fleet(self, *names: str, concurrency: int = 1) -> dict[str, subprocess.Popen[bytes]]:
        """Named runners (`--name`) and a scheduler, started and ready; the runners by name."""
        runners = {name: self.runner("--concurrency", str(concurrency), "--name", name) for name in names}
        self.scheduler()
        self.wait_ready(runners=len(names))
        return runners

    def wait_ready(self, runners: int = 1, schedulers: int = 1, timeout: float = 60.0) -> None:
        """Until the heartbeats of the expected processes appear."""
        client = connect(self.redis_url)
        try:
            def ready() -> bool:
                procs = [p for p in read_processes(client) if p.healthy]
                return (
                    sum(p.kind == "runner" for p in procs) >= runners
                    and sum(p.kind == "scheduler" for p in procs) >= schedulers
                )

            wait_for(ready, timeout=timeout, what=f"{runners} runner(s) and {schedulers} scheduler(s)")
        finally:
            client.close()

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.procs.index(proc)
        for path in self.log_dir.glob(f"*-{index}.log"):
            return path.read_text(errors="replace")
        return ""

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGCONT)
                    proc.terminate()
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def processes(redis_url: str, tmp_path: Path) -> Iterator[Processes]:
    """Start runners and schedulers with `processes.runner()` / `.scheduler()`; all stopped at the end."""
    procs = Processes(redis_url, tmp_path)
    yield procs
    procs.stop()


@pytest.fixture
def client(redis_url: str) -> Iterator[Client]:
    """The client API against the test Valkey."""
    c = Client.connect(redis_url)
    yield c
    c.close()
