"""The whole platform on one Redis URL: deploy, a runner and a scheduler process, a gateway, workflows run.

For tests of how processes reach Redis (TLS, ACL users, clusters): every kind
of connection Dolmen makes is used once at least — the CLI's and the
deployer's clients, the runner's and the scheduler's (pools, blocking
stream reads, the cancel subscription, heartbeats), the gateway's
synchronous client, its asyncio client and batched links, and its finish
subscription (a `?wait=` answered when the execution finishes).
"""

from __future__ import annotations

import json
from pathlib import Path

from dolmen.gateway.settings import GatewaySettings
from tests.gateway.helpers import GatewayThread
from tests.support.cli import run_platform
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"

# What would show that one of the long-lived subscriptions could not be made (its warnings, in JSON logs).
_SUBSCRIPTION_TROUBLE = ("notifications interrupted", "notifications failed")


def run_end_to_end(url: str, work_dir: Path) -> dict[str, object]:
    """Run workflows through a platform on `url` (processes log into `work_dir`); `platform status --json` as it ended."""
    deploy(url, [activity(), workflow()])
    processes = Processes(url, work_dir)
    gateway: GatewayThread | None = None
    try:
        runner = processes.runner()
        scheduler = processes.scheduler()
        processes.wait_ready()
        gateway = GatewayThread(GatewaySettings(redis_url=url, data_dir=work_dir / "gateway")).start()
        with gateway.client() as http:
            serial = http.post(f"/v1/functions/{F}.serial", params={"wait": 60}, json=[4])
            assert serial.status_code == 200, serial.text
            assert serial.json()["result"] == 2 * (1 + 2 + 3 + 4)
            # A durable sleep: the scheduler's timers wake it.
            slept = http.post(f"/v1/functions/{F}.sleepy", params={"wait": 60}, json=[200])
            assert slept.status_code == 200 and slept.json()["result"] >= 200, slept.text
            # A running activity, cancelled: the runner's cancel subscription tells it to stop the attempt.
            started = http.post(f"/v1/functions/{A}.slow", json=[30_000, "spin"])
            assert started.status_code == 202, started.text
            execution_id = started.json()["execution_id"]
            wait_for(lambda: http.get(f"/v1/executions/{execution_id}").json()["status"] == "running", timeout=30,
                     what="the slow activity to run")  # fmt: skip
            assert http.post(f"/v1/executions/{execution_id}/cancel").status_code in (200, 202)
            cancelled = http.get(f"/v1/executions/{execution_id}/result", params={"wait": 20})
            assert cancelled.status_code == 200 and cancelled.json()["failure"]["kind"] == "cancelled", cancelled.text
            listed = http.get("/v1/executions", params={"limit": 10}).json()["executions"]
            assert {e["execution_id"] for e in listed} >= {serial.json()["execution_id"], execution_id}
        status = run_platform("--redis", url, "--data-dir", str(work_dir / "cli"), "status", "--json")
        assert status.returncode in (0, 1), status.stderr  # 1: unhealthy, e.g. no gateway heartbeat (a thread here)
        for proc in (runner, scheduler):
            log = processes.log_of(proc)
            assert not [line for line in log.splitlines() if any(t in line for t in _SUBSCRIPTION_TROUBLE)], log
        return dict(json.loads(status.stdout))
    finally:
        if gateway is not None:
            gateway.stop()
        processes.stop()
