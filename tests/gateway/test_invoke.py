"""Invoking functions by ffqn and reading executions through a real gateway."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.gateway.helpers import ACT, WF
from tests.support.polling import wait_for

DOUBLE = f"{ACT}.double"


def test_functions_lists_every_deployed_ffqn_with_kind_digest_params_and_result(http: httpx.Client) -> None:
    """GET /v1/functions names each function with its kind, component digest, WIT params and result."""
    data = http.get("/v1/functions").json()
    functions = {f["ffqn"]: f for f in data["functions"]}
    assert {DOUBLE, f"{WF}.serial", f"{ACT}.slow"} <= set(functions)
    double = functions[DOUBLE]
    assert double["kind"] == "activity"
    assert double["component_digest"].startswith("sha256:")
    assert double["params"] == [{"name": "x", "type": "u64"}]
    assert double["result"] == "u64"
    assert functions[f"{WF}.serial"]["kind"] == "workflow"
    assert functions[f"{ACT}.slow"]["params"] == [{"name": "ms", "type": "u32"}, {"name": "tag", "type": "string"}]


def test_one_function_is_described_at_its_own_url(http: httpx.Client) -> None:
    """GET /v1/functions/{ffqn} describes one function; an unknown one is 404."""
    assert http.get(f"/v1/functions/{ACT}.maybe").json()["result"] == "result<u32, string>"
    assert http.get(f"/v1/functions/{ACT}.missing").status_code == 404


def test_invoke_with_object_params_answers_202_with_location(http: httpx.Client) -> None:
    """Params by name: 202 with the execution id and a Location that later shows the result."""
    response = http.post(f"/v1/functions/{DOUBLE}", json={"x": 21})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert response.headers["location"] == f"/v1/executions/{body['execution_id']}"
    done = wait_for(
        lambda: (r := http.get(response.headers["location"]).json())["status"] == "finished" and r,
        what="the execution to finish",
    )
    assert done["result"] == 42
    assert done["ffqn"] == DOUBLE
    assert done["params"] == [21]


def test_invoke_with_array_params_and_wait_answers_200_with_the_result(http: httpx.Client) -> None:
    """Params by position with ?wait: 200 with the finished execution and its result."""
    response = http.post(f"/v1/functions/{ACT}.slow?wait=30", json=[10, "tagged"])
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "finished"
    assert body["result"] == "tagged"
    assert body["component_digest"].startswith("sha256:")
    assert "created_at" in body and "finished_at" in body


def test_prefer_wait_header_waits_like_the_query_parameter(http: httpx.Client) -> None:
    """`Prefer: wait=N` waits for the result and says so in Preference-Applied."""
    response = http.post(f"/v1/functions/{WF}.serial", json={"n": 3}, headers={"Prefer": "wait=30"})
    assert response.status_code == 200
    assert response.json()["result"] == 12
    assert response.headers["preference-applied"] == "wait=30"


def test_a_wait_shorter_than_the_execution_answers_202(http: httpx.Client) -> None:
    """When the wait runs out first the answer is 202 with the current status."""
    response = http.post(f"/v1/functions/{ACT}.slow?wait=0.2", json={"ms": 3000, "tag": "late"})
    assert response.status_code == 202
    execution_id = response.json()["execution_id"]
    assert response.json()["status"] in ("pending", "running")
    result = http.get(f"/v1/executions/{execution_id}/result", params={"wait": 30})
    assert result.status_code == 200
    assert result.json()["result"] == "late"


def test_result_long_poll_answers_202_while_running(http: httpx.Client) -> None:
    """GET .../result?wait=N answers 202 if the execution is still running after N seconds."""
    execution_id = http.post(f"/v1/functions/{ACT}.slow", json={"ms": 3000, "tag": "x"}).json()["execution_id"]
    response = http.get(f"/v1/executions/{execution_id}/result", params={"wait": 0.3})
    assert response.status_code == 202
    assert response.json() == {"execution_id": execution_id, "status": response.json()["status"]}


def test_idempotency_key_gives_the_same_execution(http: httpx.Client) -> None:
    """The same Idempotency-Key returns the same execution id, marked as replayed."""
    key = f"order-{uuid.uuid4()}"
    first = http.post(f"/v1/functions/{DOUBLE}", json={"x": 4}, headers={"Idempotency-Key": key})
    second = http.post(f"/v1/functions/{DOUBLE}?wait=30", json={"x": 4}, headers={"Idempotency-Key": key})
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["execution_id"] == first.json()["execution_id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["result"] == 8


def test_idempotency_key_reused_with_other_params_is_a_conflict(http: httpx.Client) -> None:
    """Reusing an Idempotency-Key with different params answers 409 and creates nothing."""
    key = f"k-{uuid.uuid4()}"
    assert http.post(f"/v1/functions/{DOUBLE}", json={"x": 1}, headers={"Idempotency-Key": key}).status_code == 202
    response = http.post(f"/v1/functions/{DOUBLE}", json={"x": 2}, headers={"Idempotency-Key": key})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert f"{DOUBLE} [1])" in response.json()["error"]["message"]  # the stored params, as JSON


@pytest.mark.parametrize("key", ["", "k" * 257])
def test_an_idempotency_key_of_the_wrong_length_is_400_naming_the_header(http: httpx.Client, key: str) -> None:
    response = http.post(f"/v1/functions/{DOUBLE}", json=[1], headers={"Idempotency-Key": key})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["path"] == "Idempotency-Key" and "must be 1 to 256 characters" in error["message"]


def test_failed_execution_reports_its_failure(http: httpx.Client) -> None:
    """A workflow whose child traps finishes with a failure {kind, message}."""
    response = http.post(f"/v1/functions/{WF}.failing-child?wait=60", json=[])
    assert response.status_code == 200
    body = response.json()
    assert "result" not in body
    assert body["failure"]["kind"]
    assert body["failure"]["message"]


def test_events_are_the_ordered_log(http: httpx.Client) -> None:
    """GET .../events returns the log in order, from `created` to `finished`."""
    execution_id = http.post(f"/v1/functions/{WF}.serial?wait=30", json=[2]).json()["execution_id"]
    body = http.get(f"/v1/executions/{execution_id}/events").json()
    types = [e["type"] for e in body["events"]]
    assert types[0] == "created" and types[-1] == "finished"
    assert types.count("child_submitted") == 2
    assert [e["index"] for e in body["events"]] == list(range(len(types)))
    later = http.get(f"/v1/executions/{execution_id}/events", params={"after": 2}).json()["events"]
    assert [e["index"] for e in later] == list(range(3, len(types)))


def test_list_filters_by_ffqn_and_status_and_pages_with_a_cursor(http: httpx.Client) -> None:
    """GET /v1/executions filters by ffqn and status and walks pages through `next`."""
    ids = {http.post(f"/v1/functions/{ACT}.shout?wait=30", json={"message": f"m{i}"}).json()["execution_id"] for i in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"ffqn": f"{ACT}.shout", "status": "finished", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/executions", params=params).json()
        assert len(page["executions"]) <= 2
        assert all(x["ffqn"] == f"{ACT}.shout" and x["status"] == "finished" for x in page["executions"])
        seen += [x["execution_id"] for x in page["executions"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert set(seen) == ids
    assert len(seen) == len(set(seen))
    created = [x["created_at"] for x in http.get("/v1/executions", params={"ffqn": f"{ACT}.shout"}).json()["executions"]]
    assert created == sorted(created, reverse=True)


def test_list_rejects_an_unknown_status_and_a_forged_cursor(http: httpx.Client) -> None:
    """Bad list filters answer 400 naming the parameter."""
    assert http.get("/v1/executions", params={"status": "done"}).json()["error"]["path"] == "status"
    assert http.get("/v1/executions", params={"cursor": "!!"}).json()["error"]["path"] == "cursor"
    assert http.get("/v1/executions", params={"limit": 0}).status_code == 400


def test_cancel_finishes_a_running_workflow_as_cancelled(http: httpx.Client) -> None:
    """POST .../cancel stops a sleeping workflow; its result is a `cancelled` failure."""
    execution_id = http.post(f"/v1/functions/{WF}.cancellable", json={"ms": 200}).json()["execution_id"]
    wait_for(
        lambda: http.get(f"/v1/executions/{execution_id}").json()["status"] == "blocked",
        what="the workflow to block on its sleep",
    )
    response = http.post(f"/v1/executions/{execution_id}/cancel")
    assert response.status_code in (200, 202)
    result = http.get(f"/v1/executions/{execution_id}/result", params={"wait": 30}).json()
    assert result["failure"]["kind"] == "cancelled"
    again = http.post(f"/v1/executions/{execution_id}/cancel")
    assert again.status_code == 409


def test_unknown_execution_is_404_and_a_malformed_id_400(http: httpx.Client) -> None:
    """Reading an execution that does not exist is 404; an id that cannot exist is 400."""
    assert http.get("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2").status_code == 404
    assert http.get("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2/result").status_code == 404
    response = http.get("/v1/executions/not-an-id")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_name"


def test_healthz_reports_ok(http: httpx.Client) -> None:
    """GET /healthz answers 200 when the store answers."""
    assert http.get("/healthz").json() == {"status": "ok"}
