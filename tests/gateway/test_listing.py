"""`GET /v1/executions` on the real platform: filters by outcome that find failures, `err` results and cancellations
anywhere in the trees, pages older and newer over more than one page, the scan bound's partial pages, and 400s for
bad filters and cursors that say what to send instead."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from dolmen.gateway import listing
from tests.gateway.helpers import ACT, WF
from tests.gateway.test_errors import assert_error
from tests.support.polling import wait_for


def listed(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/v1/executions", params=params)
    assert response.status_code == 200, response.text
    return response.json()["executions"]


def ids(http: httpx.Client, **params: Any) -> set[str]:
    return {e["execution_id"] for e in listed(http, **params)}


def settled(http: httpx.Client, execution_id: str) -> dict[str, Any]:
    return wait_for(lambda: (s := http.get(f"/v1/executions/{execution_id}").json())["status"] == "finished" and s, what=execution_id)


def test_outcome_filters_find_failures_errors_and_cancellations_anywhere_in_the_trees(http: httpx.Client) -> None:
    """A workflow that returned while its two children were cancelled, one failed by its trapping child, an `err`
    result and a success: each outcome filter lists exactly its executions, children of successful trees included."""
    run = uuid.uuid4().hex
    tag = f"run={run}"
    abandoned = http.post(f"/v1/functions/{WF}.abandon?wait=30&tag={tag}", json={"ms": 20_000}).json()
    failing = http.post(f"/v1/functions/{WF}.failing-child?wait=60&tag={tag}", json={}).json()
    err = http.post(f"/v1/functions/{ACT}.maybe?wait=30&tag={tag}", json=[True]).json()
    ok = http.post(f"/v1/functions/{ACT}.double?wait=30&tag={tag}", json=[4]).json()
    assert abandoned.get("result") == 2 and failing["failure"]["kind"] == "child_failed", (abandoned, failing)
    cancelled = [c["execution_id"] for c in http.get(f"/v1/executions/{abandoned['execution_id']}/children").json()["children"]]
    assert len(cancelled) == 2
    assert [settled(http, c)["failure"]["kind"] for c in cancelled] == ["cancelled", "cancelled"]
    trapped = http.get(f"/v1/executions/{failing['execution_id']}/children").json()["children"]
    assert [c["failure"]["kind"] for c in trapped] == ["trap"]

    assert ids(http, tag=tag, outcome="cancelled") == set(cancelled)
    assert ids(http, tag=tag, outcome="trap") == {trapped[0]["execution_id"]}
    assert ids(http, tag=tag, outcome="child_failed") == {failing["execution_id"]}
    assert ids(http, tag=tag, outcome="failed") == {*cancelled, trapped[0]["execution_id"], failing["execution_id"]}
    assert ids(http, tag=tag, outcome="failed", root="true") == {failing["execution_id"]}
    assert ids(http, tag=tag, outcome="err") == {err["execution_id"]}
    assert ids(http, tag=tag, outcome="ok") == {abandoned["execution_id"], ok["execution_id"]}
    assert ids(http, tag=tag, outcome="failed", status="finished") == ids(http, tag=tag, outcome="failed")
    # Without a tag: the `executions` index, children too, the newest first.
    everywhere = listed(http, outcome="cancelled", limit=200)
    assert set(cancelled) <= {e["execution_id"] for e in everywhere}
    assert all(e["failure"]["kind"] == "cancelled" for e in everywhere)


def test_pages_go_older_and_back_newer_over_more_than_one_page_and_stay_put(http: httpx.Client) -> None:
    """Seven executions in pages of three: `next` walks them once each, newest first, `previous` walks back to the
    newest page (which has none), and a page read again after new executions shows the same ones."""
    run = uuid.uuid4().hex
    made = [http.post(f"/v1/functions/{ACT}.double?tag=run={run}", json=[i]).json()["execution_id"] for i in range(7)]
    wait_for(lambda: len(listed(http, tag=f"run={run}")) == 7, what="7 listed")
    newest_first = [e["execution_id"] for e in listed(http, tag=f"run={run}")]
    assert sorted(newest_first) == sorted(made)

    pages = [http.get("/v1/executions", params={"tag": f"run={run}", "limit": 3}).json()]
    while pages[-1]["next"] is not None:
        pages.append(http.get("/v1/executions", params={"tag": f"run={run}", "limit": 3, "cursor": pages[-1]["next"]}).json())
    assert [[e["execution_id"] for e in p["executions"]] for p in pages] == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    assert pages[0]["previous"] is None and all(p["previous"] for p in pages[1:])
    assert not any(p["partial"] for p in pages)

    http.post(f"/v1/functions/{ACT}.double?wait=30&tag=run={run}", json=[99])
    again = http.get("/v1/executions", params={"tag": f"run={run}", "limit": 3, "cursor": pages[0]["next"]}).json()
    assert [e["execution_id"] for e in again["executions"]] == newest_first[3:6]
    back = http.get("/v1/executions", params={"tag": f"run={run}", "limit": 3, "cursor": pages[2]["previous"]}).json()
    assert [e["execution_id"] for e in back["executions"]] == newest_first[3:6]
    up = http.get("/v1/executions", params={"tag": f"run={run}", "limit": 3, "cursor": back["previous"]}).json()
    assert [e["execution_id"] for e in up["executions"]] == newest_first[:3] and up["previous"]  # the new one is above
    top = http.get("/v1/executions", params={"tag": f"run={run}", "limit": 3, "cursor": up["previous"]}).json()
    assert top["previous"] is None and [e["execution_id"] for e in top["executions"]][1:] == newest_first[:2]


def test_a_filter_few_pass_answers_partial_pages_whose_next_searches_on(http: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded to 4 states a request, an `err` older than ten successes is reached through partial, empty pages."""
    monkeypatch.setattr(listing, "SCAN_LIMIT", 4)
    run = uuid.uuid4().hex
    err = http.post(f"/v1/functions/{ACT}.maybe?wait=30&tag=run={run}", json=[True]).json()["execution_id"]
    for i in range(10):
        http.post(f"/v1/functions/{ACT}.double?wait=30&tag=run={run}", json=[i])
    page = http.get("/v1/executions", params={"tag": f"run={run}", "outcome": "err"}).json()
    assert page["executions"] == [] and page["partial"] is True and page["next"]
    found: list[str] = []
    requests = 1
    while page["next"] is not None:
        page = http.get("/v1/executions", params={"tag": f"run={run}", "outcome": "err", "cursor": page["next"]}).json()
        found += [e["execution_id"] for e in page["executions"]]
        requests += 1
    assert found == [err] and requests == 3


def test_bad_filters_cursors_and_parameters_are_400s_that_say_what_to_send(http: httpx.Client) -> None:
    """Each names its parameter in `path` and, in words, the values it takes or what to pass instead."""
    message = assert_error(http.get("/v1/executions", params={"status": "failed"}), 400, "usage_error", "status")
    assert "use one of pending, running, blocked, finished" in message and "outcome=failed" in message
    message = assert_error(http.get("/v1/executions", params={"outcome": "broken"}), 400, "usage_error", "outcome")
    assert message.startswith("unknown outcome 'broken'; use one of ok, err, continued, failed, trap, timeout, cancelled")
    message = assert_error(http.get("/v1/executions", params={"outcome": "failed", "status": "running"}), 400, "usage_error", "outcome")
    assert "leave the status out" in message
    for cursor in ("!!", "eyJyIjogNTB9"):  # garbage, and an offset cursor of an older gateway
        message = assert_error(http.get("/v1/executions", params={"cursor": cursor}), 400, "usage_error", "cursor")
        assert "pass a page's `next` or `previous` as it is, or leave the cursor out" in message
    message = assert_error(http.get("/v1/executions", params={"stauts": "failed"}), 400, "bad_request", "stauts")
    assert "unknown query parameter 'stauts'" in message and "status, outcome" in message
    assert_error(http.get("/v1/executions", params={"limit": 0}), 400, "bad_request", "limit")
    assert_error(http.get("/v1/executions", params={"root": "yes"}), 400, "bad_request", "root")
