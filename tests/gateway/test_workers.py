"""External workers: executions of `kind: external` functions claimed and settled over HTTP, on real processes.

A runner and a scheduler run as processes, a gateway serves HTTP on loopback, on a Valkey
of the module's own: one platform for all the tests here (tests/support/shared.py); each
test submits its own executions, and what it leaves unfinished is cancelled after it;
the external component (tests/components/stub-approvals, WIT only) is run by
the test itself over /v1/workers, or by examples/worker.py as a process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from dolmen.gateway.settings import GatewaySettings, Token
from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig, RetryPolicy
from dolmen.platform.store.heartbeats import read_processes
from dolmen.platform.store.connection import connect
from tests.gateway.helpers import GatewayThread
from tests.support.guests import DATA_DIR, build_guest, build_stub_guest
from tests.support.platform import Processes, deploy
from tests.support.shared import SharedPlatform, settle_leftovers, shared_platform
from tests.support.polling import wait_for

IFACE = "testing:stub/approvals@1.0.0"
S = f"{IFACE}.approve"
SCORE = f"{IFACE}.score"
W = "testing:wf-stub/waits@1.0.0"
WORKER = Path(__file__).resolve().parents[2] / "examples" / "worker.py"


def external_components(*, timeout_ms: int | None = 60_000, retry_on_err: bool = False) -> list[tuple[ComponentConfig, Path]]:
    """stub-approvals as `kind: external` (3 attempts, quick backoff) and the wf-stub workflow that calls it."""
    retry = RetryPolicy(max_attempts=3, initial_backoff_ms=50, max_backoff_ms=200, retry_on_err=retry_on_err)
    approvals = ComponentConfig("approvals", "external", "", "tests/components/stub-approvals", {}, retry=retry, timeout_ms=timeout_ms)
    waits = ComponentConfig("waits", "workflow", "", "tests/components/wf-stub", {})
    return [(approvals, build_stub_guest("stub-approvals", "stubs")), (waits, build_guest("wf-stub", "stub-waits"))]


def deploy_external(redis_url: str, *, timeout_ms: int | None = 60_000, retry_on_err: bool = False) -> None:
    """Deploy `external_components`."""
    deploy(redis_url, external_components(timeout_ms=timeout_ms, retry_on_err=retry_on_err))


@dataclass
class Served:
    http: httpx.Client
    url: str
    processes: Processes


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    """One platform for the module: both components deployed, a runner, a scheduler, and a gateway."""
    with shared_platform(tmp_path_factory.mktemp("workers"), external_components()) as platform:
        yield platform


@pytest.fixture
def redis_url(shared: SharedPlatform) -> Iterator[str]:
    """The module's Valkey (not emptied: its processes run on); what a test leaves unfinished is cancelled after it."""
    yield shared.url
    settle_leftovers(shared.url)


@pytest.fixture
def redeploys(redis_url: str) -> Iterator[None]:
    """For a test that deploys other settings (last in the module): the module's deployment again after it."""
    yield
    deploy_external(redis_url)


@pytest.fixture
def served(redis_url: str, shared: SharedPlatform) -> Iterator[Served]:
    """The module's platform, with the default deployment (a test that deploys other settings has it restored)."""
    assert shared.gateway is not None
    with shared.gateway.client() as http:
        yield Served(http, shared.gateway.url, shared.processes)


def claim(http: httpx.Client, *, ffqns: tuple[str, ...] = (S, SCORE), lease_ms: int = 30_000, wait_s: float = 10, **more: Any) -> list[dict[str, Any]]:
    answer = http.post("/v1/workers/claim", json={"ffqns": list(ffqns), "lease_ms": lease_ms, "wait_s": wait_s, **more})
    assert answer.status_code == 200, answer.text
    return answer.json()["tasks"]


def claim_one(http: httpx.Client, execution_id: str, **kwargs: Any) -> dict[str, Any]:
    """Claim until the task of `execution_id` comes (other tasks are not expected)."""
    (task,) = wait_for(lambda: claim(http, **kwargs), timeout=30, what=f"a task for {execution_id}")
    assert task["execution_id"] == execution_id, task
    return task


def post(http: httpx.Client, task: dict[str, Any], verb: str, **body: Any) -> httpx.Response:
    return http.post(f"/v1/workers/tasks/{task['execution_id']}/{verb}", json={"token": task["lease"]["token"], **body})


def event_types(client: Client, execution_id: str) -> list[str]:
    return [e.type for e in client.executions.events(execution_id)]


def test_a_worker_claims_and_completes(served: Served, client: Client) -> None:
    """A claimed execution comes with its params, attempt 1 and a lease held by a worker; completing it finishes it."""
    execution_id = client.submit(S, ["order-1"]).execution_id
    task = claim_one(served.http, execution_id)
    assert (task["ffqn"], task["params"], task["attempt"]) == (S, ["order-1"], 1)
    assert task["lease"]["owner"].startswith("worker:worker:") and task["lease"]["version"] == 1
    state = client.get(execution_id)
    assert (state.status, state.owner) == ("running", task["lease"]["owner"])
    answer = post(served.http, task, "complete", result={"ok": "bob"})
    assert answer.status_code == 200 and answer.json() == {"execution_id": execution_id, "status": "finished"}, answer.text
    assert served.http.get(f"/v1/executions/{execution_id}/result").json()["result"] == {"ok": "bob"}
    assert event_types(client, execution_id) == ["created", "finished"]
    again = post(served.http, task, "complete", result={"ok": "bob"})
    assert again.status_code == 409 and again.json()["error"]["reason"] == "finished", again.text


def test_a_claim_with_nothing_queued_waits_then_answers_empty(served: Served) -> None:
    """A long-poll claim with nothing to do answers an empty list after about wait_s."""
    started = time.monotonic()
    assert claim(served.http, wait_s=1.2) == []
    assert 1.0 <= time.monotonic() - started < 5


def test_more_waiting_claims_than_blocking_reads_all_get_work(served: Served, client: Client) -> None:
    """Twelve claims long-polling at once (past the 8 that wait in a blocking read) each get one of twelve executions."""
    with ThreadPoolExecutor(12) as pool:
        claims = [pool.submit(claim, served.http, wait_s=20) for _ in range(12)]
        time.sleep(0.5)  # all of them waiting
        submitted = {client.submit(SCORE, [f"k{i}"]).execution_id for i in range(12)}
        got = [task["execution_id"] for future in claims for task in future.result(timeout=30)]
    assert sorted(got) == sorted(submitted)


def test_a_workflow_finishes_with_the_result_of_an_external_function(served: Served, client: Client) -> None:
    """A workflow calls an external function like an activity, and finishes with the worker's result."""
    workflow_id = client.submit(f"{W}.ask", ["order-2"]).execution_id
    (task,) = wait_for(lambda: claim(served.http), timeout=30, what="the workflow's external child")
    assert task["params"] == ["order-2"] and task["execution_id"].startswith(workflow_id)
    assert post(served.http, task, "complete", result={"ok": "carol"}).status_code == 200
    done = served.http.get(f"/v1/executions/{workflow_id}/result", params={"wait": 30}).json()
    assert done["result"] == "approved by carol", done


def test_a_workflow_calls_an_external_function_in_a_join_set(served: Served, client: Client) -> None:
    """Submitted into a join set with a delay, the external child's result wins the race when a worker supplies it in time."""
    workflow_id = client.submit(f"{W}.ask-within", ["order-2b", 60_000]).execution_id
    (task,) = wait_for(lambda: claim(served.http), timeout=30, what="the workflow's external child")
    assert task["params"] == ["order-2b"]
    assert post(served.http, task, "complete", result={"err": "over budget"}).status_code == 200
    done = served.http.get(f"/v1/executions/{workflow_id}/result", params={"wait": 30}).json()
    assert done["result"] == "refused: over budget", done


def test_a_result_of_the_wrong_type_is_refused_naming_the_field(served: Served, client: Client) -> None:
    """A result that does not fit the WIT result type is a 400 naming the field; the lease holds, a good one then finishes it."""
    execution_id = client.submit(SCORE, ["k"]).execution_id
    task = claim_one(served.http, execution_id)
    bad = post(served.http, task, "complete", result="many")
    assert bad.status_code == 400, bad.text
    assert bad.json()["error"]["path"] == "result" and "u32" in bad.json()["error"]["message"], bad.text
    missing = served.http.post(f"/v1/workers/tasks/{execution_id}/complete", json={"token": task["lease"]["token"]})
    assert missing.status_code == 400 and missing.json()["error"]["path"] == "result"
    assert post(served.http, task, "complete", result=7).status_code == 200
    assert client.get(execution_id).outcome.value == 7  # type: ignore[union-attr]


def test_a_body_that_is_not_an_object_is_refused_naming_what_to_send(served: Served, client: Client) -> None:
    """A worker's body is a JSON object: `null` (a document, not a missing body), an array or a string is a 400
    with path `body` showing the object to send; nothing is claimed."""
    execution_id = client.submit(S, ["order-null"]).execution_id
    for content, kind in ((b"null", "JSON null"), (b"[]", "a JSON array"), (b'"x"', "a JSON string")):
        answer = served.http.post("/v1/workers/claim", content=content, headers={"content-type": "application/json"})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert (error["code"], error["path"]) == ("bad_request", "body")
        assert error["message"] == f'the body is {kind}, not an object; send an object such as {{"ffqns": ["ns:pkg/ifc@1.0.0.fn"], "max": 1, "wait_s": 10}}'
    answer = served.http.post(f"/v1/workers/tasks/{execution_id}/heartbeat", content=b"null")
    assert answer.status_code == 400 and answer.json()["error"]["message"].startswith("the body is JSON null, not an object; send")
    assert client.get(execution_id).status == "pending"  # cancelled after the test, as every leftover


def test_a_claim_of_a_function_that_is_not_external_is_refused(served: Served) -> None:
    """Workers claim only functions of external components: a workflow's or an unknown ffqn is a 400 naming it."""
    answer = served.http.post("/v1/workers/claim", json={"ffqns": [S, f"{W}.ask"]})
    assert answer.status_code == 400 and answer.json()["error"]["path"] == "ffqns[1]", answer.text
    assert "kind: workflow" in answer.json()["error"]["message"]
    unknown = served.http.post("/v1/workers/claim", json={"ffqns": ["testing:nope/x@1.0.0.y"]})
    assert unknown.status_code == 400 and "not deployed" in unknown.json()["error"]["message"]


def test_a_failed_attempt_is_retried_then_finishes_failed(served: Served, client: Client) -> None:
    """`fail` records a failed attempt and the execution comes back as attempt 2, 3; the third failure finishes it."""
    execution_id = client.submit(S, ["order-3"]).execution_id
    for attempt in (1, 2, 3):
        task = claim_one(served.http, execution_id)
        assert task["attempt"] == attempt
        answer = post(served.http, task, "fail", error=f"the partner API is down ({attempt})")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == ("retrying" if attempt < 3 else "finished")
        if attempt == 1:
            again = post(served.http, task, "complete", result={"ok": "late"})
            assert again.status_code == 409 and again.json()["error"]["reason"] == "retrying", again.text
    state = client.get(execution_id)
    assert state.status == "finished" and state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "worker_error" and "gave up after 3 attempts" in state.outcome.failure.message
    assert event_types(client, execution_id) == ["created", "attempt_failed", "attempt_failed", "finished"]


def test_a_failure_that_is_not_retryable_finishes_at_once(served: Served, client: Client) -> None:
    """`retryable: false` finishes the execution failed on the first attempt."""
    execution_id = client.submit(S, ["order-4"]).execution_id
    task = claim_one(served.http, execution_id)
    answer = post(served.http, task, "fail", error="no such order", retryable=False)
    assert answer.json()["status"] == "finished"
    assert client.get(execution_id).outcome.failure.kind == "worker_error"  # type: ignore[union-attr]


def test_an_expired_lease_is_taken_over_and_its_holder_is_fenced(served: Served, client: Client) -> None:
    """A lease not heartbeated expires; the next claim takes over (attempt 2, attempt_lost), and the first holder's writes are 409."""
    execution_id = client.submit(S, ["order-5"]).execution_id
    first = claim_one(served.http, execution_id, lease_ms=600)
    second = claim_one(served.http, execution_id, lease_ms=600, wait_s=0.5)
    assert second["attempt"] == 2 and second["lease"]["version"] == first["lease"]["version"] + 1
    assert "attempt_lost" in event_types(client, execution_id)
    for verb, body in (("complete", {"result": {"ok": "late"}}), ("heartbeat", {}), ("fail", {"error": "late"})):
        fenced = post(served.http, first, verb, **body)
        assert fenced.status_code == 409, fenced.text
        assert (fenced.json()["error"]["code"], fenced.json()["error"]["reason"]) == ("lease_lost", "taken_over")
    assert post(served.http, second, "complete", result={"ok": "dave"}).status_code == 200
    assert client.get(execution_id).outcome.value == {"ok": "dave"}  # type: ignore[union-attr]


def test_heartbeats_keep_a_lease(served: Served, client: Client) -> None:
    """A heartbeated lease outlives its length: no other claim gets the execution meanwhile."""
    execution_id = client.submit(S, ["order-6"]).execution_id
    task = claim_one(served.http, execution_id, lease_ms=1500)
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        beat = post(served.http, task, "heartbeat")
        assert beat.status_code == 200, beat.text
        assert claim(served.http, lease_ms=1500, wait_s=0.2) == []
    assert post(served.http, task, "complete", result={"ok": "erin"}).status_code == 200
    assert "attempt_lost" not in event_types(client, execution_id)


def test_a_cancelled_execution_is_told_on_the_next_heartbeat(served: Served, client: Client) -> None:
    """Cancelling a claimed execution finishes it as cancelled at the worker's next heartbeat (409 `cancelled`); a pending one at once."""
    execution_id = client.submit(S, ["order-7"]).execution_id
    task = claim_one(served.http, execution_id)
    client.cancel(execution_id)
    beat = post(served.http, task, "heartbeat")
    assert beat.status_code == 409 and beat.json()["error"]["reason"] == "cancelled", beat.text
    assert client.get(execution_id).outcome.failure.kind == "cancelled"  # type: ignore[union-attr]
    pending = client.submit(S, ["order-7b"]).execution_id
    client.cancel(pending)
    assert client.get(pending).outcome.failure.kind == "cancelled"  # type: ignore[union-attr]
    assert claim(served.http, wait_s=0.3) == []


def test_runners_never_lock_external_executions(redis_url: str, served: Served, client: Client) -> None:
    """The runner reads only the workflow's queues: an external execution waits unlocked while the runner runs a workflow."""
    execution_id = client.submit(SCORE, ["left-alone"]).execution_id
    workflow_id = client.submit(f"{W}.ask", ["order-8"]).execution_id
    (task,) = wait_for(lambda: claim(served.http, ffqns=(S,)), timeout=30, what="the workflow's external child")
    assert post(served.http, task, "complete", result={"ok": "frank"}).status_code == 200
    assert client.wait(workflow_id, 30).status == "finished"
    state = client.get(execution_id)
    assert (state.status, state.version, state.owner) == ("pending", 0, None)
    redis = connect(redis_url)
    try:

        def read_queues() -> list[int]:
            # Its heartbeat reports how many queues it reads: wf-stub's 3 functions, none of the external 3.
            # (The module's runner only: no other process reports into its Valkey, but the check stays exact.)
            ours = {proc.pid for proc in served.processes.procs}
            return [
                p.details.get("queues", 0) for p in read_processes(redis)
                if p.kind == "runner" and p.details.get("processed") and p.pid in ours
            ]  # fmt: skip

        assert wait_for(read_queues, timeout=30, what="a runner's heartbeat after its first execution") == [3]
    finally:
        redis.close()


def test_a_worker_process_killed_mid_lease_is_replaced_by_another(redis_url: str, served: Served, client: Client, tmp_path: Path) -> None:
    """examples/worker.py killed (SIGKILL) while it holds a lease: another worker process gets attempt 2 and completes it."""
    execution_id = client.submit(S, ["order-9"]).execution_id
    env = {**os.environ, "LEASE_MS": "1500"}
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]

    def start(log: Path, *args: str) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            return subprocess.Popen([sys.executable, str(WORKER), served.url, IFACE, *args], stdout=out, stderr=subprocess.STDOUT, env=env)

    first = start(logs[0], "--hold", "60")
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: f"claimed {execution_id} attempt 1" in logs[0].read_text(), timeout=30, what="the first worker's claim")
        time.sleep(1.0)  # heartbeats keep its lease meanwhile
        assert client.get(execution_id).status == "running"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = start(logs[1])
        wait_for(lambda: client.get(execution_id).status == "finished", timeout=60, what="the second worker to complete it")
        assert f"claimed {execution_id} attempt 2" in logs[1].read_text()
        state = client.get(execution_id)
        assert state.attempt == 2 and state.outcome is not None and state.outcome.value == {"ok": f"worker {second.pid}"}
        events = client.executions.events(execution_id)
        assert [e.type for e in events] == ["created", "attempt_lost", "finished"]
        assert events[1].data["owner"].startswith("worker:py-")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_openapi_documents_the_workers_api(served: Served) -> None:
    """The OpenAPI document validates and lists the workers' operations, the complete body typed by the external results."""
    doc = served.http.get("/openapi.json").json()
    validate(doc)
    for path in ("/v1/workers/claim", "/v1/workers/tasks/{id}/heartbeat", "/v1/workers/tasks/{id}/complete", "/v1/workers/tasks/{id}/fail"):
        assert "post" in doc["paths"][path], path
    body = doc["paths"]["/v1/workers/tasks/{id}/complete"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    titles = {s["title"] for s in body["properties"]["result"]["anyOf"]}
    assert titles == {S, SCORE, f"{IFACE}.acknowledge"}


def test_workers_need_an_invoke_token(redis_url: str, served: Served, client: Client) -> None:
    """With tokens configured, a claim without one is a 401; an invoke token claims and completes."""
    server = GatewayThread(GatewaySettings(redis_url=redis_url, data_dir=DATA_DIR, tokens=(Token("w-secret", "invoke"),))).start()
    try:
        with server.client() as http:
            assert http.post("/v1/workers/claim", json={"ffqns": [S]}).status_code == 401
            execution_id = client.submit(S, ["order-11"]).execution_id
            http.headers["Authorization"] = "Bearer w-secret"
            task = claim_one(http, execution_id)
            assert post(http, task, "complete", result={"ok": "gail"}).status_code == 200
    finally:
        server.stop()


def test_an_attempt_past_the_timeout_fails_as_timed_out_and_is_retried(redis_url: str, served: Served, client: Client, redeploys: None) -> None:
    """Past the function's timeout, a heartbeat is 409 `timed_out`: the attempt is recorded as a timeout and retried."""
    deploy_external(redis_url, timeout_ms=800)
    execution_id = client.submit(S, ["order-10"]).execution_id
    task = claim_one(served.http, execution_id)
    assert "timeout_at" in task
    time.sleep(1.0)  # past the timeout: nothing tells the worker before its next heartbeat
    beat = post(served.http, task, "heartbeat")
    assert beat.status_code == 409 and beat.json()["error"]["reason"] == "timed_out", beat.text
    failed = [e for e in client.executions.events(execution_id) if e.type == "attempt_failed"]
    assert failed and failed[0].data["error"]["kind"] == "timeout"
    retried = claim_one(served.http, execution_id)
    assert retried["attempt"] == 2
    assert post(served.http, retried, "complete", result={"ok": "quick"}).status_code == 200
