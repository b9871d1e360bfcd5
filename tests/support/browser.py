"""Drive a page in headless Chromium over the DevTools protocol, on a pipe: no extra package needed."""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.polling import wait_for


# JavaScript for the start of an async expression: `await until(() => ...)` polls the page every 50 ms, for up to 20 s.
UNTIL_IN_PAGE = """
  const until = async (check) => {
    for (let i = 0; i < 400; i++) {
      const found = check();
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("timed out waiting in the page");
  };
"""


def evaluate_in_page(
    url: str, tmp_path: Path, expression: str, timeout: float = 60.0, *, screenshot: Path | None = None
) -> object:
    """Open `url` in headless Chromium and evaluate `expression` (a promise is awaited) in the page, over the
    DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on fd 3, replies on fd 4, NUL-terminated).

    With `screenshot`, the page as it is once the expression is done is saved there (PNG, 1280x1000).
    """
    from tests.gateway.test_dashboard import CHROMIUM  # the one Chromium the browser tests look for

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--no-proxy-server",
        f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-pipe", "--window-size=1280,1000",
        "--hide-scrollbars", url,
    ]  # fmt: skip
    # bash (dash takes one-digit fds only) puts the pipes where Chromium expects them (fd 3 in, fd 4 out),
    # then becomes Chromium.
    proc = subprocess.Popen(
        ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', *command],
        pass_fds=(to_browser_r, from_browser_w),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    os.close(to_browser_r)
    os.close(from_browser_w)
    received = b""
    deadline = time.monotonic() + timeout

    def call(message_id: int, method: str, params: dict[str, object], session: str | None = None) -> dict[str, object]:
        nonlocal received
        message: dict[str, object] = {"id": message_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(to_browser_w, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in received:
                if time.monotonic() > deadline:
                    raise AssertionError(f"Chromium did not answer {method} in time")
                ready, _, _ = select.select([from_browser_r], [], [], 1.0)
                if ready:
                    chunk = os.read(from_browser_r, 65536)
                    if not chunk:
                        raise AssertionError("Chromium closed its DevTools pipe")
                    received += chunk
            raw, _, received = received.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    try:
        targets = wait_for(
            lambda: [t for t in call(1, "Target.getTargets", {})["targetInfos"] if t["type"] == "page"],  # type: ignore[index,union-attr]
            what="Chromium's page",
        )
        session = str(call(2, "Target.attachToTarget", {"targetId": targets[0]["targetId"], "flatten": True})["sessionId"])
        ids = iter(range(3, 10_000))

        def loaded() -> bool:
            # The page given on the command line may still be loading: its first context then goes away.
            try:
                check = "document.readyState + ' ' + location.href"
                ready = call(next(ids), "Runtime.evaluate", {"expression": check, "returnByValue": True}, session)
            except AssertionError as exc:
                if "context" in str(exc):
                    return False
                raise
            return ready["result"].get("value") == f"complete {url}"  # type: ignore[union-attr]

        wait_for(loaded, what=f"{url} to load")
        result = call(
            next(ids), "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"the page's script failed: {result['exceptionDetails']}")
        if screenshot is not None:
            shot = call(next(ids), "Page.captureScreenshot", {"format": "png"}, session)
            screenshot.write_bytes(base64.b64decode(str(shot["data"])))
        return result["result"].get("value")  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
        os.close(to_browser_w)
        os.close(from_browser_r)
