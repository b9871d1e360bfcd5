"""Stubs: functions deployed as `kind: stub` whose results are supplied from outside, on real processes.

A runner and a scheduler run as processes, a gateway serves HTTP on loopback, on a Valkey
of the module's own: one platform for all the tests here (tests/support/shared.py); each
test submits its own executions, and what it leaves unfinished is cancelled after it;
the stub (tests/components/stub-approvals, WIT only) is never run: its
executions wait until the test supplies their result over HTTP or the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from dolmen.gateway.settings import GatewaySettings, Token
from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig
from dolmen.platform.store import keys
from dolmen.platform.store.connection import connect
from dolmen.platform.store.records import ExecutionState
from dolmen.platform.store.shards import load as load_shards
from dolmen.platform.workflow.sandbox import WorkflowSandbox
from dolmen.platform.workflow.verify import verify
from tests.gateway.helpers import GatewayThread
from tests.support.browser import UNTIL_IN_PAGE, evaluate_in_page
from tests.support.guests import DATA_DIR, build_guest, build_stub_guest, load_guest, new_loader
from tests.support.platform import deploy
from tests.support.shared import SharedPlatform, settle_leftovers, shared_platform
from tests.support.polling import wait_for

S = "testing:stub/approvals@1.0.0"
W = "testing:wf-stub/waits@1.0.0"


def stub_and_workflow(blocking: str = "in-memory") -> list[tuple[ComponentConfig, Path]]:
    """The stub-approvals stub and the wf-stub workflow that calls it (waiting as `blocking` says)."""
    return [
        (ComponentConfig("approvals", "stub", "", "tests/components/stub-approvals", {}), build_stub_guest("stub-approvals", "stubs")),
        (ComponentConfig("waits", "workflow", "", "tests/components/wf-stub", {}, blocking=blocking), build_guest("wf-stub", "stub-waits")),  # type: ignore[arg-type]
    ]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    """Both components deployed, a runner, a scheduler whose repair sweep looks often, and a gateway: one for the module."""
    # The repair sweep re-enqueues what looks forgotten after this long: it must leave waiting stubs alone.
    env = {"DOLMEN_REPAIR_AFTER_MS": "300"}
    with shared_platform(tmp_path_factory.mktemp("stubs"), stub_and_workflow(), env=env) as platform:
        yield platform


@pytest.fixture
def redis_url(shared: SharedPlatform) -> Iterator[str]:
    """The module's Valkey (not emptied: its processes run on); what a test leaves unfinished is cancelled after it."""
    yield shared.url
    settle_leftovers(shared.url)


@pytest.fixture
def redeploys(redis_url: str) -> Iterator[None]:
    """For a test that deploys other settings: the module's deployment again after it."""
    yield
    deploy(redis_url, stub_and_workflow())


@pytest.fixture
def http(redis_url: str, shared: SharedPlatform) -> Iterator[httpx.Client]:
    """An HTTP client of the module's gateway."""
    assert shared.gateway is not None
    with shared.gateway.client() as client:
        yield client


def stub_child(client: Client, workflow_id: str) -> ExecutionState:
    """The stub child the workflow submitted, once it exists and waits."""

    def waiting() -> ExecutionState | None:
        submitted = [e for e in client.executions.events(workflow_id) if e.type == "child_submitted"]
        if not submitted:
            return None
        state = client.executions.get(submitted[0].data["child_id"])
        return state if state is not None and state.status == "blocked" else None

    return wait_for(waiting, timeout=60, what=f"the stub child of {workflow_id}")


def assert_never_run(redis_url: str, state: ExecutionState) -> None:
    """No runner locked the stub execution (its lease version never moved) and it was never queued."""
    redis = connect(redis_url)
    try:
        raw = redis.hgetall(keys.state(state.id))
        fields = {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]
        assert fields["version"] == "0" and fields["attempt"] == "0" and not fields.get("owner"), fields
        assert redis.xlen(load_shards(redis).queue(state.ffqn, state.id)) == 0
    finally:
        redis.close()


def platform_cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `platform` program against the test Valkey."""
    return subprocess.run(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--redis", redis_url, "--data-dir", str(DATA_DIR), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("blocking", ["in-memory", "unload"])
def test_a_workflow_waits_for_a_result_supplied_over_http(
    redis_url: str, http: httpx.Client, client: Client, blocking: str, redeploys: None
) -> None:
    """A workflow calling a stub waits (in memory, or unloaded and woken) until the result is PUT over HTTP,
    finishes with it, and its log replays cleanly."""
    if blocking == "unload":
        deploy(redis_url, stub_and_workflow(blocking))
    workflow_id = client.submit(f"{W}.ask", ["order-1"]).execution_id
    child = stub_child(client, workflow_id)
    if blocking == "unload":
        wait_for(lambda: client.get(workflow_id).status == "blocked", what="the workflow to unload")
    shown = http.get(f"/v1/executions/{child.id}").json()
    assert (shown["kind"], shown["status"], shown["waiting_for"]) == ("stub", "blocked", "result")
    assert http.get(f"/v1/executions/{workflow_id}/result", params={"wait": 1}).status_code == 202
    answer = http.put(f"/v1/executions/{child.id}/result", json={"ok": "alice"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == {"ok": "alice"} and "Idempotent-Replayed" not in answer.headers
    done = http.get(f"/v1/executions/{workflow_id}/result", params={"wait": 30}).json()
    assert done["result"] == "approved by alice", done
    events = client.executions.events(workflow_id)
    assert [e.type for e in events] == ["created", "child_submitted", "response", "finished"]
    assert events[2].data == {"child_id": child.id, "result": {"ok": "alice"}}
    assert [e.type for e in client.executions.events(child.id)] == ["created", "finished"]
    assert client.executions.events(child.id)[1].data == {"result": {"ok": "alice"}, "supplied": True}
    loaded = load_guest(new_loader("workflow"), "wf-stub", "stub-waits")
    assert verify(WorkflowSandbox(), loaded, workflow_id, f"{W}.ask", events).ok
    assert_never_run(redis_url, child)


def test_a_result_is_recorded_once_and_checked_against_its_type(redis_url: str, http: httpx.Client, client: Client) -> None:
    """The same value again is a no-op (200), another one a 409, a badly typed one a 400 naming the field."""
    created = http.post(f"/v1/functions/{S}.approve", json=["order-2"])
    assert created.status_code == 202, created.text
    stub_id = created.json()["execution_id"]
    assert created.json()["status"] == "pending" or http.get(f"/v1/executions/{stub_id}").json()["status"] == "blocked"
    bad = http.put(f"/v1/executions/{stub_id}/result", json={"maybe": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["path"].startswith("result"), bad.text
    wrong = http.put(f"/v1/executions/{stub_id}/result", json={"ok": 5})
    assert wrong.status_code == 400 and wrong.json()["error"]["path"] == "result.ok", wrong.text
    not_json = http.put(f"/v1/executions/{stub_id}/result", content=b"{nope")
    assert not_json.status_code == 400
    assert http.get(f"/v1/executions/{stub_id}").json()["status"] == "blocked"
    first = http.put(f"/v1/executions/{stub_id}/result", json={"err": "too expensive"})
    assert first.status_code == 200 and first.json()["result"] == {"err": "too expensive"}, first.text
    again = http.put(f"/v1/executions/{stub_id}/result", json={"err": "too expensive"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    other = http.put(f"/v1/executions/{stub_id}/result", json={"ok": "bob"})
    assert other.status_code == 409, other.text
    error = other.json()["error"]
    assert error["code"] == "result_recorded" and "already has the result" in error["message"]
    assert [e.type for e in client.executions.events(stub_id)] == ["created", "finished"]
    # A function that returns nothing takes null only.
    acknowledged = http.post(f"/v1/functions/{S}.acknowledge", json=["seen-1"]).json()["execution_id"]
    something = http.put(f"/v1/executions/{acknowledged}/result", json=1)
    assert something.status_code == 400 and "returns nothing: supply null" in something.json()["error"]["message"]
    nothing = http.put(f"/v1/executions/{acknowledged}/result", json=None)
    assert nothing.status_code == 200 and nothing.json()["result"] is None, nothing.text
    # Not a stub, or no such execution.
    workflow_id = client.submit(f"{W}.ask", ["order-3"]).execution_id
    not_stub = http.put(f"/v1/executions/{workflow_id}/result", json="x")
    assert not_stub.status_code == 409 and not_stub.json()["error"]["code"] == "not_a_stub", not_stub.text
    assert "kind: stub" in not_stub.json()["error"]["message"]
    missing = http.put("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2/result", json="x")
    assert missing.status_code == 404
    assert_never_run(redis_url, client.get(stub_id))


def test_the_cli_completes_a_stub(redis_url: str, http: httpx.Client, client: Client) -> None:
    """`platform executions complete ID VALUE` finishes a stub and its workflow; again is a no-op, another value exits 1."""
    workflow_id = client.submit(f"{W}.double-score", ["k"]).execution_id
    child = stub_child(client, workflow_id)
    bad = platform_cli(redis_url, "executions", "complete", child.id, '"seven"')
    assert bad.returncode == 2 and "result: " in bad.stderr, bad.stderr
    done = platform_cli(redis_url, "executions", "complete", child.id, "21")
    assert done.returncode == 0 and "result recorded" in done.stdout, done.stderr
    assert client.wait(workflow_id, 30).outcome.value == 42  # type: ignore[union-attr]
    again = platform_cli(redis_url, "--json", "executions", "complete", child.id, "21")
    assert again.returncode == 0 and json.loads(again.stdout) == {"execution_id": child.id, "recorded": False}
    other = platform_cli(redis_url, "executions", "complete", child.id, "22")
    assert other.returncode == 1 and "already has the result 21" in other.stderr, other.stderr
    assert_never_run(redis_url, child)


def test_a_delay_in_the_join_set_times_the_stub_out(redis_url: str, http: httpx.Client, client: Client) -> None:
    """A stub child and a delay in one join set: the delay wins, the workflow says so, and the stub is cancelled."""
    workflow_id = client.submit(f"{W}.ask-within", ["order-4", 300]).execution_id
    state = client.wait(workflow_id, 60)
    assert state.outcome is not None and state.outcome.value == "timeout", state
    child_id = next(e.data["child_id"] for e in client.executions.events(workflow_id) if e.type == "child_submitted")
    child = wait_for(lambda: (s := client.get(child_id)).status == "finished" and s, what="the stub child cancelled")
    assert child.outcome is not None and child.outcome.failure is not None and child.outcome.failure.kind == "cancelled"
    late = http.put(f"/v1/executions/{child_id}/result", json={"ok": "too late"})
    assert late.status_code == 409 and "already finished as cancelled" in late.json()["error"]["message"], late.text
    assert_never_run(redis_url, child)


def test_a_stub_answered_in_time_wins_over_the_delay(redis_url: str, http: httpx.Client, client: Client) -> None:
    """The same join set with a long delay: the supplied result comes first."""
    workflow_id = client.submit(f"{W}.ask-within", ["order-5", 60_000]).execution_id
    child = stub_child(client, workflow_id)
    assert http.put(f"/v1/executions/{child.id}/result", json={"ok": "carol"}).status_code == 200
    assert client.wait(workflow_id, 30).outcome.value == "approved by carol"  # type: ignore[union-attr]


def test_cancelling_a_waiting_stub_fails_its_caller(redis_url: str, http: httpx.Client, client: Client) -> None:
    """A waiting stub is cancelled at once, like a pending activity; the workflow that called it gets child_failed."""
    workflow_id = client.submit(f"{W}.ask", ["order-6"]).execution_id
    child = stub_child(client, workflow_id)
    cancelled = http.post(f"/v1/executions/{child.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel"] == "cancelled", cancelled.text
    state = client.wait(workflow_id, 30)
    assert state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "child_failed" and child.id in state.outcome.failure.message
    assert_never_run(redis_url, child)


def test_openapi_documents_the_stub_results(http: httpx.Client) -> None:
    """The served OpenAPI document stays valid and types PUT /v1/executions/{id}/result by the deployed stubs."""
    doc = http.get("/openapi.json").json()
    validate(doc)
    put = doc["paths"]["/v1/executions/{id}/result"]["put"]
    schemas = {s["title"]: s for s in put["requestBody"]["content"]["application/json"]["schema"]["anyOf"]}
    assert set(schemas) == {f"{S}.approve", f"{S}.score", f"{S}.acknowledge"}
    approve = Draft202012Validator(schemas[f"{S}.approve"])
    assert approve.is_valid({"ok": "alice"}) and approve.is_valid({"err": "no"}) and not approve.is_valid({"maybe": 1})
    assert Draft202012Validator(schemas[f"{S}.score"]).is_valid(7)
    assert {"200", "400", "404", "409"} <= set(put["responses"])
    assert "stub" in doc["components"]["schemas"]["Execution"]["properties"]["kind"]["enum"]


@pytest.mark.browser
def test_the_dashboard_shows_a_waiting_stub(redis_url: str, http: httpx.Client, client: Client, tmp_path: Path) -> None:
    """In headless Chromium, a waiting stub is badged `waiting for result` and its detail says how to supply it."""
    from tests.gateway.test_dashboard import chromium

    stub_id = http.post(f"/v1/functions/{S}.score", json=["k"]).json()["execution_id"]
    wait_for(lambda: client.get(stub_id).status == "blocked", what="the stub to wait")
    dom = chromium(f"{http.base_url}/#{stub_id}", tmp_path, "--dump-dom").stdout
    assert f'data-id="{stub_id}"' in dom
    assert 'class="status status-waiting"' in dom and "waiting for result</span>" in dom
    assert f"PUT /v1/executions/{stub_id}/result</code>" in dom
    assert 'id="notice" class="notice" hidden' in dom


def test_platform_deploy_takes_a_stub_from_yaml(redis_url: str, tmp_path: Path, redeploys: None) -> None:
    """`platform deploy` of a YAML file with `kind: stub`: checked, stored, listed as a stub by `platform functions`."""
    (stub, stub_path), (_, wf_path) = stub_and_workflow()
    deployment = tmp_path / "shop.yaml"
    deployment.write_text(
        "name: shop\n"
        "components:\n"
        f"  - {{name: approvals, kind: stub, source: {stub_path}, retention: 1d}}\n"
        f"  - {{name: waits, kind: workflow, source: {wf_path}}}\n"
    )
    deployed = platform_cli(redis_url, "deploy", str(deployment))
    assert deployed.returncode == 0, deployed.stderr
    assert "never run: results supplied from outside" in deployed.stdout
    listed = json.loads(platform_cli(redis_url, "--json", "functions").stdout)
    kinds = {f["ffqn"]: f["kind"] for f in listed["functions"]}
    assert kinds[f"{S}.approve"] == "stub" and kinds[f"{W}.ask"] == "workflow"
    deployment.write_text(deployment.read_text().replace("retention: 1d", "timeout: 5s"))
    refused = platform_cli(redis_url, "deploy", str(deployment))
    assert refused.returncode == 2 and "'timeout' does not apply to a stub" in refused.stderr, refused.stderr


def test_no_runner_or_repair_sweep_touches_a_waiting_stub(redis_url: str, http: httpx.Client, client: Client) -> None:
    """Stubs left waiting well past the repair sweep's horizon (300 ms here) are never queued, locked or re-enqueued."""
    top = client.submit(f"{S}.score", ["alone"]).execution_id
    child = stub_child(client, client.submit(f"{W}.double-score", ["k2"]).execution_id)
    before = {execution_id: client.get(execution_id) for execution_id in (top, child.id)}
    time.sleep(3.0)  # a negative: nothing may happen; the scheduler sweeps once a second
    for execution_id, seen in before.items():
        now = client.get(execution_id)
        assert (now.status, now.updated_at, now.version, now.attempt) == ("blocked", seen.updated_at, 0, 0), now
        assert_never_run(redis_url, now)


def test_supplying_a_result_needs_an_invoke_token(redis_url: str, http: httpx.Client, client: Client) -> None:
    """With tokens configured, no token is a 401 and an `invoke` token may supply a result."""
    stub_id = client.submit(f"{S}.score", ["secured"]).execution_id
    secured = GatewayThread(
        GatewaySettings(redis_url=redis_url, data_dir=DATA_DIR, tokens=(Token("invoker-token", "invoke"),))
    ).start()
    try:
        with secured.client() as anonymous:
            assert anonymous.put(f"/v1/executions/{stub_id}/result", json=3).status_code == 401
        with secured.client(headers={"Authorization": "Bearer invoker-token"}) as invoker:
            answer = invoker.put(f"/v1/executions/{stub_id}/result", json=3)
            assert answer.status_code == 200 and answer.json()["result"] == 3, answer.text
    finally:
        secured.stop()


SUPPLY_IN_THE_DASHBOARD = """
(async () => {
""" + UNTIL_IN_PAGE + """
  const form = await until(() => { const f = document.getElementById("complete-form"); return f && !f.hidden && f; });
  await until(() => document.getElementById("complete-value").placeholder);
  const placeholder = document.getElementById("complete-value").placeholder;
  document.getElementById("complete-value").value = '"seven"';
  form.requestSubmit();
  const refused = await until(() => document.getElementById("complete-error").textContent);
  document.getElementById("complete-value").value = "7";
  form.requestSubmit();
  await until(() => document.querySelector("#detail .status-finished"));
  return {placeholder, refused, hidden: form.hidden, detail: document.getElementById("detail").textContent};
})()
"""


@pytest.mark.browser
def test_the_dashboard_supplies_a_result(redis_url: str, http: httpx.Client, client: Client, tmp_path: Path) -> None:
    """In headless Chromium, the detail of a waiting stub has a form: a badly typed value is refused next to
    it, a good one finishes the stub, and the form goes away."""
    stub_id = client.submit(f"{S}.score", ["dashboard"]).execution_id
    seen = evaluate_in_page(f"{http.base_url}/#{stub_id}", tmp_path, SUPPLY_IN_THE_DASHBOARD)
    assert isinstance(seen, dict), seen
    assert seen["placeholder"] == "JSON of u32"
    assert seen["refused"].startswith("result: "), seen
    assert seen["hidden"] is True and "finished" in seen["detail"] and "7" in seen["detail"]
    state = client.get(stub_id)
    assert state.outcome is not None and state.outcome.value == 7
