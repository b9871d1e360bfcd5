"""Tags through a real gateway: `?tag=KEY=VALUE` on an invocation, on the execution listing, and 400s that name the fix."""

from __future__ import annotations

import uuid

import httpx

from tests.gateway.helpers import ACT, WF
from tests.gateway.test_errors import assert_error
from tests.support.polling import wait_for

DOUBLE = f"{ACT}.double"


def test_an_invocation_carries_its_tags_to_its_children_and_the_listing_filters_by_them(http: httpx.Client) -> None:
    """POST with two tags: the execution and its children show them, and GET /v1/executions?tag= lists exactly those."""
    run = uuid.uuid4().hex
    done = http.post(f"/v1/functions/{WF}.fan-out?wait=60&tag=run={run}&tag=team=a%3Db", json=[2])
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["tags"] == {"run": run, "team": "a=b"}
    other = http.post(f"/v1/functions/{DOUBLE}?wait=60&tag=run={run}", json=[1]).json()
    assert other["tags"] == {"run": run}

    listed = http.get("/v1/executions", params={"tag": f"run={run}"}).json()["executions"]
    children = [e for e in listed if e.get("parent_id") == body["execution_id"]]
    assert {e["execution_id"] for e in listed} == {body["execution_id"], other["execution_id"], *(c["execution_id"] for c in children)}
    assert len(children) == 2 and all(c["tags"] == body["tags"] for c in children)
    both = http.get("/v1/executions", params=[("tag", f"run={run}"), ("tag", "team=a=b"), ("ffqn", f"{WF}.fan-out")]).json()
    assert [e["execution_id"] for e in both["executions"]] == [body["execution_id"]]
    assert http.get("/v1/executions", params={"tag": f"run={run}x"}).json() == {"executions": [], "next": None, "previous": None, "partial": False}
    shown = http.get(f"/v1/executions/{children[0]['execution_id']}").json()
    assert shown["tags"] == body["tags"]


def test_listing_by_tag_pages_with_the_cursor(http: httpx.Client) -> None:
    """Pages of two through five tagged executions give them all, newest first, once each."""
    run = uuid.uuid4().hex
    ids = [http.post(f"/v1/functions/{DOUBLE}?tag=run={run}", json=[i]).json()["execution_id"] for i in range(5)]
    wait_for(lambda: len(http.get("/v1/executions", params={"tag": f"run={run}"}).json()["executions"]) == 5, what="5 listed")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = http.get("/v1/executions", params={"tag": f"run={run}", "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["execution_id"] for e in page["executions"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_a_bad_tag_is_400_naming_the_tag_and_creates_nothing(http: httpx.Client) -> None:
    """A tag without '=', with an empty value, with a bad key or over the limits answers 400 with path `tag`."""
    run = uuid.uuid4().hex
    for query, words in [
        ("tag=customer", "write tags as KEY=VALUE"),
        ("tag=customer=", "has an empty value"),
        ("tag=cust%20omer=x", "a key is made of ASCII letters"),
        (f"tag=k={'v' * 257}", "over the limit of 256"),
        ("&".join(f"tag=k{i}=v" for i in range(17)), "at most 16"),
        ("tag=k=1&tag=k=2", "given twice"),
    ]:
        message = assert_error(http.post(f"/v1/functions/{DOUBLE}?{query}&tag=run={run}", json=[1]), 400, "usage_error", "tag")
        assert words in message, message
    assert http.get("/v1/executions", params={"tag": f"run={run}"}).json()["executions"] == []
    message = assert_error(http.get("/v1/executions", params={"tag": "nokey"}), 400, "usage_error", "tag")
    assert "KEY=VALUE" in message


def test_an_idempotency_key_reused_with_other_tags_is_409(http: httpx.Client) -> None:
    """The same key and tags replay the execution; the same key with other tags is a conflict naming the tags it has."""
    key, run = str(uuid.uuid4()), uuid.uuid4().hex
    first = http.post(f"/v1/functions/{DOUBLE}?tag=run={run}", json=[1], headers={"Idempotency-Key": key})
    replayed = http.post(f"/v1/functions/{DOUBLE}?tag=run={run}", json=[1], headers={"Idempotency-Key": key})
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["execution_id"] == first.json()["execution_id"]
    message = assert_error(
        http.post(f"/v1/functions/{DOUBLE}?tag=run=other", json=[1], headers={"Idempotency-Key": key}), 409, "conflict"
    )
    assert f'other tags ({{"run": "{run}"}})' in message
