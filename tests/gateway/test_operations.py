"""The operator API the dashboard uses: children, listing by digest and roots, deployments, rerun, fork, upgrade check."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dolmen.gateway.settings import Token
from dolmen.platform.model import Revision
from tests.gateway.helpers import ACT, WF, GatewayThread, Platform
from tests.gateway.test_errors import assert_error
from tests.support.polling import wait_for

ADMIN = "admin-ops-0123"
INVOKER = "invoke-ops-4567"


@pytest.fixture
def serial_id(http: httpx.Client) -> str:
    """A finished `serial(3)` workflow with three children."""
    done = http.post(f"/v1/functions/{WF}.serial?wait=30", json={"n": 3}).json()
    assert done["result"] == 12
    return done["execution_id"]


def finished(http: httpx.Client, execution_id: str) -> dict[str, Any]:
    """The execution once it has finished (long-polled)."""
    answer = wait_for(
        lambda: (r := http.get(f"/v1/executions/{execution_id}/result?wait=5")).status_code == 200 and r,
        what=f"{execution_id} to finish",
    )
    return answer.json()


def test_children_lists_a_workflow_s_children_in_submission_order(http: httpx.Client, serial_id: str) -> None:
    """`GET /v1/executions/{id}/children` answers the children's states, each naming its parent."""
    body = http.get(f"/v1/executions/{serial_id}/children").json()
    assert body["execution_id"] == serial_id and body["total"] == 3
    assert [c["params"] for c in body["children"]] == [[1], [2], [3]]
    assert {c["parent_id"] for c in body["children"]} == {serial_id}
    assert [c["result"] for c in body["children"]] == [2, 4, 6]
    assert http.get(f"/v1/executions/{body['children'][0]['execution_id']}/children").json()["children"] == []


def test_the_listing_filters_by_digest_and_leaves_children_out_with_root(http: httpx.Client, serial_id: str) -> None:
    """`?digest=` keeps the executions of one component, `?root=true` only those no workflow started."""
    state = http.get(f"/v1/executions/{serial_id}").json()
    child = http.get(f"/v1/executions/{serial_id}/children").json()["children"][0]
    page = http.get("/v1/executions", params={"digest": state["component_digest"], "limit": 200}).json()["executions"]
    assert serial_id in [x["execution_id"] for x in page]
    assert {x["component_digest"] for x in page} == {state["component_digest"]}
    other = http.get("/v1/executions", params={"digest": child["component_digest"], "limit": 200}).json()["executions"]
    assert child["execution_id"] in [x["execution_id"] for x in other] and serial_id not in [x["execution_id"] for x in other]
    roots = http.get("/v1/executions", params={"root": "true", "ffqn": f"{ACT}.double", "limit": 200}).json()["executions"]
    assert all("parent_id" not in x for x in roots)
    assert child["execution_id"] not in [x["execution_id"] for x in roots]
    message = assert_error(http.get("/v1/executions?digest=abc"), 400, "bad_request", "digest")
    assert message == "?digest=abc: no deployed component has digest abc; GET /v1/deployments lists them"
    assert assert_error(http.get("/v1/executions?root=yes"), 400, "bad_request", "root") == "root must be true or false, got 'yes'"


def test_the_digest_filter_takes_the_short_digest_the_tools_show(http: httpx.Client, serial_id: str) -> None:
    """`?digest=` with a unique prefix (as `platform` and the dashboard print it) lists that component's executions;
    `sha256:` with no digit is a 400 saying what a digest is (tests/deploy/test_digests.py: a prefix of several)."""
    digest = http.get(f"/v1/executions/{serial_id}").json()["component_digest"]
    for short in (digest[:19], digest[7:19]):
        page = http.get("/v1/executions", params={"digest": short, "limit": 200}).json()["executions"]
        assert serial_id in [x["execution_id"] for x in page]
        assert {x["component_digest"] for x in page} == {digest}
    message = assert_error(http.get("/v1/executions", params={"digest": "sha256:"}), 400, "bad_request", "digest")
    assert message.startswith("?digest=sha256:: 'sha256:' is not a component digest nor the start of one")
    gone = "sha256:" + "0" * 64
    assert http.get("/v1/executions", params={"digest": gone}).json()["executions"] == []


def test_deployments_list_revisions_and_the_digests_that_run(
    http: httpx.Client, platform: Platform, next_revision: Revision
) -> None:
    """`GET /v1/deployments`: revisions newest first with their components, and which digest runs which function."""
    body = http.get("/v1/deployments").json()
    numbers = [r["revision"] for r in body["revisions"]]
    assert numbers == sorted(numbers, reverse=True) and next_revision.number in numbers
    active = [r for r in body["revisions"] if r["active"]]
    assert [r["revision"] for r in active] == [body["active"]]
    wf = {c["name"]: c for c in active[0]["components"]}["wf"]
    assert f"{WF}.serial" in wf["functions"] and wf["digest"].startswith("sha256:")
    (row,) = [v for v in body["versions"] if v["ffqn"] == f"{WF}.serial" and v["active"]]
    assert row["digest"] == wf["digest"]
    assert len(http.get("/v1/deployments?limit=1").json()["revisions"]) == 1
    assert_error(http.get("/v1/deployments?limit=0"), 400, "bad_request", "limit")


def test_rerun_starts_the_same_function_with_the_same_params(http: httpx.Client, serial_id: str) -> None:
    """`POST .../rerun` answers 201 with a new execution that runs to the same result."""
    response = http.post(f"/v1/executions/{serial_id}/rerun")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rerun_of"] == serial_id and body["execution_id"] != serial_id
    assert response.headers["location"] == f"/v1/executions/{body['execution_id']}"
    done = finished(http, body["execution_id"])
    assert done["result"] == 12 and done["params"] == [3]


def test_fork_copies_a_prefix_of_the_log_and_runs_on(http: httpx.Client, serial_id: str) -> None:
    """`POST .../fork {"at": N}` answers 201; the fork holds the first N events and finishes like its source."""
    response = http.post(f"/v1/executions/{serial_id}/fork", json={"at": 3})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["forked_from"] == serial_id and body["at"] == 3 and body["events_copied"] == 3
    assert finished(http, body["execution_id"])["result"] == 12
    events = http.get(f"/v1/executions/{body['execution_id']}/events").json()["events"]
    source = http.get(f"/v1/executions/{serial_id}/events").json()["events"]
    assert [e["type"] for e in events[:3]] == [e["type"] for e in source[:3]]


def test_a_fork_reports_the_children_it_copied_apart_from_those_it_started(http: httpx.Client, serial_id: str) -> None:
    """A child answered in the copied prefix is never created: `children` lists the fork's own children, `copied`
    the copied ones with the original child's id, `total` counts both; reading a copied id is a 404 saying so."""
    source = http.get(f"/v1/executions/{serial_id}/events").json()["events"]
    at = next(e["index"] for e in source if e["type"] == "response") + 1  # the first child answered, in the copy
    body = http.post(f"/v1/executions/{serial_id}/fork", json={"at": at}).json()
    fork_id = body["execution_id"]
    assert finished(http, fork_id)["result"] == 12
    children = http.get(f"/v1/executions/{fork_id}/children").json()
    assert children["total"] == 3 == len(children["children"]) + len(children["copied"])
    (copied,) = children["copied"]
    assert copied["child_id"] == f"{fork_id}.1" and copied["original_id"] == f"{serial_id}.1"
    assert copied["params"] == [1] and copied["ffqn"] == f"{ACT}.double" and "child_id" not in copied["response"]
    assert [c["execution_id"] for c in children["children"]] == [f"{fork_id}.2", f"{fork_id}.3"]
    for path in (f"/v1/executions/{fork_id}.1", f"/v1/executions/{fork_id}.1/events", f"/v1/executions/{fork_id}.1/result"):
        message = assert_error(http.get(path), 404, "not_found")
        assert message.startswith(f"execution {fork_id}.1 was never created: fork {fork_id} copied")
        assert f"original run ({serial_id}.1)" in message and "retention" not in message
    assert "retention passed" in assert_error(http.get(f"/v1/executions/{fork_id}.9"), 404, "not_found")
    assert http.get(f"/v1/executions/{serial_id}/children").json()["copied"] == []


def test_fork_refuses_a_body_it_cannot_read_as_bad_request_and_an_activity_as_usage_error(
    http: httpx.Client, serial_id: str
) -> None:
    """Codes as upgrade-check's: a body that is not `{"at": integer}` is `bad_request`; what the fork refuses for the
    execution (an `at` outside its log, 0 included, or an activity: nothing to fork, POST .../rerun) is `usage_error`."""
    act = http.post(f"/v1/functions/{ACT}.double?wait=30", json=[2]).json()["execution_id"]
    shape = 'send {"at": N}, N the number of events to copy (1 or more)'
    fork = f"/v1/executions/{serial_id}/fork"
    assert assert_error(http.post(fork, json={}), 400, "bad_request", "at") == f"at: missing; {shape}"
    assert assert_error(http.post(fork, json={"at": "2"}), 400, "bad_request", "at") == f'at: expected an integer, got "2"; {shape}'
    assert assert_error(http.post(fork, json={"at": True}), 400, "bad_request", "at") == f"at: expected an integer, got true; {shape}"
    assert assert_error(http.post(fork), 400, "bad_request", "at") == f"at: missing; {shape}"
    assert assert_error(http.post(fork, json=[3]), 400, "bad_request", "body") == f"the body is a JSON array, not an object; {shape}"
    for at in (0, -1, 999):
        message = assert_error(http.post(fork, json={"at": at}), 400, "usage_error", "at")
        assert message.startswith(f"at {at} is out of range for {serial_id}: choose 1 to "), message
    message = assert_error(http.post(f"/v1/executions/{act}/fork", json={"at": 1}), 400, "usage_error")
    assert message == f"{act} is an activity, which has no log to fork; use POST /v1/executions/{act}/rerun"
    assert http.post("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2/rerun").status_code == 404


def test_a_json_null_body_is_not_a_missing_body(http: httpx.Client, serial_id: str) -> None:
    """`null`, a JSON document, is refused with a 400 saying what to send where an endpoint takes an object (or no
    body); only an empty body counts as none. Nothing is started."""
    before = len(http.get("/v1/executions", params={"ffqn": f"{WF}.serial", "limit": 200}).json()["executions"])
    json_type = {"content-type": "application/json"}
    message = assert_error(http.post(f"/v1/executions/{serial_id}/rerun", content=b"null", headers=json_type), 400, "bad_request", "body")
    assert message == "the body is JSON null, not an object; send no body, or {}"
    message = assert_error(http.post(f"/v1/executions/{serial_id}/rerun", content=b' "x" '), 400, "bad_request", "body")
    assert message == "the body is a JSON string, not an object; send no body, or {}"
    message = assert_error(http.post(f"/v1/executions/{serial_id}/fork", content=b"null", headers=json_type), 400, "bad_request", "body")
    assert message == 'the body is JSON null, not an object; send {"at": N}, N the number of events to copy (1 or more)'
    message = assert_error(http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", content=b"null", headers=json_type), 400, "bad_request", "body")
    assert message.startswith('the body is JSON null, not an object; send {"to": DIGEST}')
    after = len(http.get("/v1/executions", params={"ffqn": f"{WF}.serial", "limit": 200}).json()["executions"])
    assert after == before
    assert http.post(f"/v1/executions/{serial_id}/rerun", content=b" \n").status_code == 201  # whitespace: no body


def test_operation_errors_use_the_api_s_words_not_the_cli_s(http: httpx.Client, serial_id: str) -> None:
    """Errors over HTTP name body fields and endpoints (`at`, GET /v1/executions), never `--at` or `platform ...`."""
    message = assert_error(http.post(f"/v1/executions/{serial_id}/fork", json={"at": 999}), 400, "usage_error", "at")
    assert message.startswith(f"at 999 is out of range for {serial_id}: choose 1 to ") and "--at" not in message
    assert "--at" not in assert_error(http.post(f"/v1/executions/{serial_id}/fork", json={"at": 0}), 400, "usage_error", "at")
    missing = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
    for action, body in (("rerun", None), ("fork", {"at": 1})):
        message = assert_error(http.post(f"/v1/executions/{missing}/{action}", json=body), 404, "not_found")
        assert message.endswith("(GET /v1/executions lists them)") and "platform" not in message
    message = assert_error(http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", json={"to": "sha256:ffffffff"}), 404, "not_found", "to")
    assert message == "no deployed component has digest sha256:ffffffff; GET /v1/deployments lists them"


def test_operations_refuse_unknown_body_fields(http: httpx.Client, serial_id: str) -> None:
    """A field an operation does not take is a 400 naming it and the accepted ones, and nothing is started."""
    before = len(http.get("/v1/executions", params={"ffqn": f"{WF}.serial", "limit": 200}).json()["executions"])
    message = assert_error(
        http.post(f"/v1/executions/{serial_id}/fork", json={"at": 3, "component": "sha256:abc"}), 400, "bad_request", "component"
    )
    assert message == "unknown field 'component' in the body; this endpoint takes only 'at'"
    message = assert_error(http.post(f"/v1/executions/{serial_id}/rerun", json={"params": [4]}), 400, "bad_request", "params")
    assert message == "unknown field 'params' in the body; this endpoint takes no fields (send no body or {})"
    assert_error(http.post(f"/v1/executions/{serial_id}/rerun", json=[4]), 400, "bad_request", "body")
    message = assert_error(
        http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", json={"to": "sha256:0", "force": True}), 400, "bad_request", "force"
    )
    assert message == "unknown field 'force' in the body; this endpoint takes only 'to'"
    after = len(http.get("/v1/executions", params={"ffqn": f"{WF}.serial", "limit": 200}).json()["executions"])
    assert after == before
    assert http.post(f"/v1/executions/{serial_id}/rerun", json={}).status_code == 201


def test_upgrade_check_replays_running_executions_on_another_digest_and_writes_nothing(
    http: httpx.Client, next_revision: Revision
) -> None:
    """The dry run reports `would-upgrade` for a sleeping workflow that replays on wf-next; its pin is unchanged."""
    sleeping = http.post(f"/v1/functions/{WF}.sleepy", json={"ms": 600_000}).json()["execution_id"]
    wait_for(lambda: http.get(f"/v1/executions/{sleeping}").json()["status"] == "blocked", what="the sleep to start")
    before = http.get(f"/v1/executions/{sleeping}").json()["component_digest"]
    target = next_revision.components[0].digest
    response = http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", json={"to": target[:20]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["to_digest"] == target
    mine = [e for e in body["executions"] if e["execution_id"] == sleeping]
    assert mine and mine[0]["outcome"] == "would-upgrade" and mine[0]["from"] == before
    assert http.get(f"/v1/executions/{sleeping}").json()["component_digest"] == before
    http.post(f"/v1/executions/{sleeping}/cancel")


def test_upgrade_check_refuses_what_is_not_a_deployed_workflow(http: httpx.Client) -> None:
    """An unknown digest is a 404 and an activity component a 400, both naming `to`; an undeployed function a 404
    naming close names; an activity function a 400 saying so; a missing `to` a 400."""
    assert_error(http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", json={"to": "sha256:ffffffff"}), 404, "not_found", "to")
    act = http.get(f"/v1/functions/{ACT}.double").json()["component_digest"]
    message = assert_error(http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", json={"to": act}), 400, "usage_error", "to")
    assert "does not export the workflow" in message
    message = assert_error(http.post(f"/v1/functions/{WF}.sleepyy/upgrade-check", json={"to": act}), 404, "not_found")
    assert message.startswith(f"function {WF}.sleepyy is not deployed") and f"{WF}.sleepy" in message
    message = assert_error(http.post(f"/v1/functions/{ACT}.double/upgrade-check", json={"to": act}), 400, "usage_error")
    assert message.startswith(f"{ACT}.double is an activity, not a workflow")
    assert_error(http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", json={}), 400, "bad_request", "to")


@pytest.fixture
def secured(start_gateway: Callable[..., GatewayThread]) -> Iterator[GatewayThread]:
    yield start_gateway(tokens=(Token(ADMIN, "admin"), Token(INVOKER, "invoke")))


def test_the_operations_need_the_admin_token(secured: GatewayThread, serial_id: str) -> None:
    """With an invoke token each operation answers 403; children are readable like the execution itself."""
    with secured.client(headers={"Authorization": f"Bearer {INVOKER}"}) as http:
        assert http.get(f"/v1/executions/{serial_id}/children").status_code == 200
        assert http.get("/v1/deployments").status_code == 403
        assert http.post(f"/v1/executions/{serial_id}/rerun").status_code == 403
        assert http.post(f"/v1/executions/{serial_id}/fork", json={"at": 2}).status_code == 403
        assert http.post(f"/v1/functions/{WF}.sleepy/upgrade-check", json={"to": "sha256:0"}).status_code == 403
    with secured.client(headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        assert http.get("/v1/deployments").status_code == 200


def test_openapi_documents_the_operations_and_the_new_listing_parameters(http: httpx.Client) -> None:
    """The document names every new path, the fork and upgrade-check bodies, and `digest`/`root` on the listing."""
    paths = http.get("/openapi.json").json()["paths"]
    assert paths["/v1/executions/{id}/fork"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == ["at"]
    assert "201" in paths["/v1/executions/{id}/rerun"]["post"]["responses"]
    assert "/v1/functions/{ffqn}/upgrade-check" in paths and "/v1/deployments" in paths
    assert "children" in str(paths["/v1/executions/{id}/children"]["get"]["responses"]["200"])
    listing = {p["name"] for p in paths["/v1/executions"]["get"]["parameters"]}
    assert {"digest", "root", "ffqn", "status", "tag"} <= listing


def test_openapi_gives_each_operation_s_body_and_which_400_code_answers_what(http: httpx.Client) -> None:
    """Rerun's body is optional and fieldless, fork's and upgrade-check's take only their field, and each 400 says
    when `bad_request` (a body that is not the object, `null` included) and when `usage_error` answer."""
    paths = http.get("/openapi.json").json()["paths"]
    operations = {name: paths[path]["post"] for name, path in (
        ("rerun", "/v1/executions/{id}/rerun"), ("fork", "/v1/executions/{id}/fork"),
        ("upgrade-check", "/v1/functions/{ffqn}/upgrade-check"),
    )}  # fmt: skip
    bodies = {name: op["requestBody"] for name, op in operations.items()}
    assert [bodies[n]["required"] for n in ("rerun", "fork", "upgrade-check")] == [False, True, True]
    schemas = {name: body["content"]["application/json"]["schema"] for name, body in bodies.items()}
    assert all(schema["additionalProperties"] is False for schema in schemas.values())
    assert schemas["rerun"]["properties"] == {} and schemas["fork"]["properties"]["at"]["type"] == "integer"
    refused = {name: op["responses"]["400"]["description"] for name, op in operations.items()}
    assert all("`bad_request`" in text and "`null` included" in text for text in refused.values())
    assert "`usage_error`" in refused["fork"] and "outside 1..N" in refused["fork"] and "`usage_error`" in refused["upgrade-check"]


def test_every_outcome_an_upgrade_check_can_answer_is_documented(http: httpx.Client) -> None:
    """The README's upgrade-check row and the OpenAPI description name each dry-run outcome, `kept` included."""
    from typing import get_args

    from dolmen.platform.deploy.upgrade_checks import Outcome

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `POST /v1/functions/{ffqn}/upgrade-check`")]
    description = http.get("/openapi.json").json()["paths"]["/v1/functions/{ffqn}/upgrade-check"]["post"]["description"]
    # `upgraded`, `rejected` and `queued` are what a real upgrade does; a dry run writes and queues nothing.
    for outcome in set(get_args(Outcome)) - {"upgraded", "rejected", "queued"}:
        assert f"`{outcome}`" in row and f"`{outcome}`" in description, outcome
    assert "rejected earlier: " in row
