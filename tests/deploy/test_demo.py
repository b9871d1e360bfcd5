"""The demo deployment in deployments/: built from source, deployed, and invoked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dolmen.platform.build import build_python_guest
from tests.deploy.conftest import Cli
from tests.support.guests import BUILD_CACHE
from tests.support.platform import Processes

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "deployments"


def test_demo_deploys_and_answers(tmp_path: Path, cli: Cli, processes: Processes) -> None:
    """deployments/demo.yaml deploys the demo components, and both workflows run to their results."""
    build = tmp_path / "build"
    build.mkdir()
    for src, world, name in (("stock", "stock", "stock.wasm"), ("orders", "shop", "orders.wasm")):
        built = build_python_guest(DEPLOYMENTS / "demo" / src, world, cache_dir=BUILD_CACHE)
        shutil.copyfile(built.path, build / name)
    shutil.copyfile(DEPLOYMENTS / "demo.yaml", tmp_path / "demo.yaml")
    report = cli.json("deploy", str(tmp_path / "demo.yaml"))
    assert {c["name"] for c in report["components"]} == {"stock", "orders"}
    processes.runner("--concurrency", "4")
    processes.scheduler()
    placed = cli("call", "demo:shop/orders@1.0.0.place", '{"order-id": "o-1", "qty": 2}')
    assert placed.returncode == 0, placed.stderr
    assert json.loads(placed.stdout)["ok"].startswith("order o-1: 2 x widget at ")
    refused = cli("call", "demo:shop/orders@1.0.0.place", '["o-2", 500]')
    assert refused.returncode == 1 and "only 100 widget in stock" in refused.stdout
    subscribed = cli("call", "demo:shop/orders@1.0.0.subscribe", '["ada", 3, 200]')
    assert json.loads(subscribed.stdout) == "ada: 3 charges (rcpt-ada-999, rcpt-ada-999, rcpt-ada-999)"
