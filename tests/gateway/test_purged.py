"""What a client sees of an execution whose tree was removed (its retention passed, or it was purged)."""

from __future__ import annotations

import uuid

import httpx

from dolmen.platform.store.connection import connect
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.trees import read_trees, remove_trees
from tests.gateway.helpers import WF, Platform
from tests.support.polling import wait_for


def test_a_removed_execution_is_404_and_its_idempotency_key_starts_a_new_one(http: httpx.Client, platform: Platform) -> None:
    """Reading a removed execution, its events or its result answers 404; its Idempotency-Key no longer names it."""
    key = f"removed-{uuid.uuid4()}"
    first = http.post(f"/v1/functions/{WF}.serial?wait=30", json={"n": 2}, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    execution_id = first.json()["execution_id"]
    client = connect(platform.redis_url)
    try:
        scripts = Scripts(client)
        # The finish's own messages may still be on their way: removal waits for them.
        wait_for(
            lambda: remove_trees(scripts, read_trees(client, [execution_id]))[execution_id] in ("removed", "missing"),
            timeout=10,
            what=f"{execution_id} to be removed",
        )
    finally:
        client.close()
    for path in ("", "/events", "/result"):
        response = http.get(f"/v1/executions/{execution_id}{path}")
        assert response.status_code == 404, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "not_found" and "was removed once its retention passed" in error["message"]
    assert http.post(f"/v1/executions/{execution_id}/cancel").status_code == 404
    again = http.post(f"/v1/functions/{WF}.serial?wait=30", json={"n": 2}, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["execution_id"] != execution_id
    assert "idempotent-replayed" not in again.headers
