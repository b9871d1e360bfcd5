"""The dashboard in headless Chromium: the page's JS renders a real execution and its log."""

from __future__ import annotations

import os
import shutil
import struct
import uuid
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.gateway.helpers import WF, GatewayThread

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on `url`; virtual time lets the page's fetches finish first."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--no-proxy-server",
        f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", *args, url,
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=True)


@pytest.fixture
def workflow_id(http: httpx.Client) -> str:
    """A finished `serial(3)` workflow: three children and eight events."""
    response = http.post(f"/v1/functions/{WF}.serial?wait=30", json={"n": 3})
    assert response.json()["result"] == 12
    return response.json()["execution_id"]


def test_dashboard_renders_functions_executions_and_a_timeline(gateway: GatewayThread, workflow_id: str, tmp_path: Path) -> None:
    """The DOM after the JS ran lists the functions, the execution with its status, and its event log."""
    dom = chromium(f"{gateway.url}/#{workflow_id}", tmp_path, "--dump-dom").stdout
    assert f"{WF}.serial" in dom
    assert f'data-id="{workflow_id}"' in dom
    assert 'class="status status-finished"' in dom
    assert f'<code id="detail-id">{workflow_id}</code>' in dom
    for index, event in enumerate(["created", "child_submitted", "response"]):
        assert f"#{index} {event}</span>" in dom
    assert "#7 finished</span>" in dom
    assert "result 12" in dom
    assert 'id="notice" class="notice" hidden' in dom


def test_dashboard_screenshot_shows_the_execution(gateway: GatewayThread, workflow_id: str, tmp_path: Path) -> None:
    """A 1200x900 screenshot of the page is written and is not blank."""
    shot = tmp_path / "dashboard.png"
    chromium(f"{gateway.url}/#{workflow_id}", tmp_path, f"--screenshot={shot}", "--window-size=1200,900")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 900)
    # A blank page compresses to a few kilobytes; text, tables and badges do not.
    assert len(data) > 40_000
    keep = os.environ.get("DOLMEN_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_dashboard_filters_the_listing_by_the_tags_in_its_url(gateway: GatewayThread, http: httpx.Client, tmp_path: Path) -> None:
    """`/?tag=KEY=VALUE` lists only the executions with that tag, shows their tags, and the detail shows them too."""
    run = uuid.uuid4().hex
    tagged = http.post(f"/v1/functions/{WF}.serial?wait=30&tag=run={run}", json={"n": 1}).json()["execution_id"]
    untagged = http.post(f"/v1/functions/{WF}.serial?wait=30", json={"n": 1}).json()["execution_id"]
    dom = chromium(f"{gateway.url}/?tag=run={run}#{tagged}", tmp_path, "--dump-dom").stdout
    assert f'data-id="{tagged}"' in dom and f'data-id="{untagged}"' not in dom
    assert f'<span class="tag">run={run}</span>' in dom
    assert "<dt>Tags</dt>" in dom
    assert 'id="notice" class="notice" hidden' in dom
