"""POST /v1/executions/{id}/pause|resume and /v1/functions/{ffqn}/pause|resume on a running platform."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.helpers import ACT, WF
from tests.gateway.test_errors import assert_error
from tests.support.browser import UNTIL_IN_PAGE, evaluate_in_page
from tests.support.polling import wait_for


def test_pause_and_resume_an_execution_over_http(http: httpx.Client) -> None:
    """Pause answers done, then already; the execution shows `paused`; resume answers done, then already."""
    execution_id = http.post(f"/v1/functions/{WF}.sleepy", json={"ms": 3_600_000}).json()["execution_id"]
    wait_for(
        lambda: http.get(f"/v1/executions/{execution_id}").json()["status"] == "blocked",
        what="the workflow to block on its sleep",
    )
    paused = http.post(f"/v1/executions/{execution_id}/pause")
    assert paused.status_code == 200 and paused.json() == {"execution_id": execution_id, "pause": "done"}
    assert http.post(f"/v1/executions/{execution_id}/pause").json()["pause"] == "already"
    shown = http.get(f"/v1/executions/{execution_id}").json()
    assert shown["paused"] is True and shown["status"] == "blocked"
    resumed = http.post(f"/v1/executions/{execution_id}/resume")
    assert resumed.status_code == 200
    assert resumed.json() == {"execution_id": execution_id, "resume": "done", "queued": False}  # blocked: nothing to run
    assert http.post(f"/v1/executions/{execution_id}/resume").json()["resume"] == "already"
    assert "paused" not in http.get(f"/v1/executions/{execution_id}").json()
    types = [e["type"] for e in http.get(f"/v1/executions/{execution_id}/events").json()["events"]]
    assert types.count("paused") == 1 and types.count("resumed") == 1
    http.post(f"/v1/executions/{execution_id}/cancel")


def test_pausing_an_unknown_or_finished_execution_is_refused(http: httpx.Client) -> None:
    """An unknown execution is 404; a finished one 409 `not_pausable`, naming it."""
    assert_error(http.post("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2/pause"), 404, "not_found")
    assert_error(http.post("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2/resume"), 404, "not_found")
    done = http.post(f"/v1/functions/{ACT}.double?wait=30", json=[2]).json()
    assert done["status"] == "finished"
    message = assert_error(http.post(f"/v1/executions/{done['execution_id']}/pause"), 409, "not_pausable")
    assert message == f"execution {done['execution_id']} ({ACT}.double) has already finished; there is nothing to pause"


def test_pause_and_resume_a_function_over_http(http: httpx.Client) -> None:
    """A paused function's new executions wait unrun and it is listed `paused`; resuming it runs them."""
    ffqn = f"{ACT}.double"
    try:
        assert http.post(f"/v1/functions/{ffqn}/pause").json() == {"ffqn": ffqn, "pause": "done"}
        assert http.post(f"/v1/functions/{ffqn}/pause").json()["pause"] == "already"
        listed = {f["ffqn"]: f for f in http.get("/v1/functions").json()["functions"]}
        assert listed[ffqn]["paused"] is True and "paused" not in listed[f"{ACT}.slow"]
        # Runners read the paused functions every second, between reads that block up to a second.
        time.sleep(2.5)
        waited = http.post(f"/v1/functions/{ffqn}?wait=2", json=[5])
        assert waited.status_code == 202
        execution_id = waited.json()["execution_id"]
        assert http.get(f"/v1/executions/{execution_id}").json()["status"] == "pending"
    finally:
        resumed = http.post(f"/v1/functions/{ffqn}/resume")
    assert resumed.json() == {"ffqn": ffqn, "resume": "done"}
    assert http.post(f"/v1/functions/{ffqn}/resume").json()["resume"] == "already"
    result = http.get(f"/v1/executions/{execution_id}/result", params={"wait": 30}).json()
    assert result["result"] == 10
    assert_error(http.post(f"/v1/functions/{ACT}.triple/pause"), 404, "not_found")


PAUSE_IN_THE_DASHBOARD = """
(async () => {
""" + UNTIL_IN_PAGE + """
  const form = await until(() => { const f = document.getElementById("pause-form"); return f && !f.hidden && f; });
  const before = document.getElementById("pause-button").textContent;
  form.requestSubmit();
  await until(() => document.querySelector("#detail .status-paused"));
  await until(() => document.getElementById("pause-button").textContent === "Resume");
  // The list refreshes on its own schedule: wait for its row too.
  const listed = await until(() => document.querySelector("#executions tr.selected .status-paused")).then(() => true, () => false);
  form.requestSubmit();
  await until(() => !document.querySelector("#detail .status-paused"));
  return {before, listed, after: document.getElementById("pause-button").textContent};
})()
"""


@pytest.mark.browser
def test_the_dashboard_pauses_and_resumes_an_execution(http: httpx.Client, tmp_path: Path) -> None:
    """In headless Chromium, the detail's button pauses a sleeping workflow (badged `paused` there and in the list), then resumes it."""
    execution_id = http.post(f"/v1/functions/{WF}.sleepy", json={"ms": 3_600_000}).json()["execution_id"]
    wait_for(lambda: http.get(f"/v1/executions/{execution_id}").json()["status"] == "blocked", what="the sleep")
    seen = evaluate_in_page(f"{http.base_url}/#{execution_id}", tmp_path, PAUSE_IN_THE_DASHBOARD)
    assert seen == {"before": "Pause", "listed": True, "after": "Pause"}, seen
    types = [e["type"] for e in http.get(f"/v1/executions/{execution_id}/events").json()["events"]]
    assert types.count("paused") == 1 and types.count("resumed") == 1
    http.post(f"/v1/executions/{execution_id}/cancel")
