"""What the fault tests share: the functions they call, and small helpers on processes and logs."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig
from dolmen.platform.deploy.versions import versions
from dolmen.platform.store.records import Event
from tests.support.guests import build_guest
from tests.support.platform import Processes

ACT = "testing:act/basic@1.0.0"
SLOW = f"{ACT}.slow"
CRASH = f"{ACT}.crash"
DOUBLE = f"{ACT}.double"
FAN_OUT = "testing:wf/flows@1.0.0.fan-out"
CALLS = "testing:wf-faults/calls@1.0.0"
SLOW_CALL = f"{CALLS}.slow-call"
BUSY = f"{CALLS}.busy"


def fault_flows(name: str = "wff", **settings: object) -> tuple[ComponentConfig, Path]:
    """The wf-faults workflow component (a direct call of `slow`; sleeps with children)."""
    config = ComponentConfig(name, "workflow", "", "tests/components/wf-faults", {}, **settings)  # type: ignore[arg-type]
    return config, build_guest("wf-faults", "fault-flows")


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def resume(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGCONT)


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def running_ids(client: Client) -> set[str]:
    """What `platform executions list --status running` shows."""
    states, _ = client.executions.list(status="running", limit=1000)
    return {s.id for s in states}


def unfinished_of(client: Client, ffqn: str) -> int:
    """What `platform versions` counts as unfinished executions of `ffqn`."""
    return sum(row.unfinished for row in versions(client.redis, ffqn) if row.ffqn == ffqn)


def proxied(processes: Processes, url: str, tmp_path: Path, name: str) -> Processes:
    """Processes talking to Redis at `url` (a proxy), with the same environment; the caller stops them."""
    log_dir = tmp_path / name
    log_dir.mkdir()
    return Processes(url, log_dir, env=processes.env)
