"""Server-sent events: a running workflow's log, followed live until it finishes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.gateway.helpers import WF, GatewayThread


@dataclass
class Received:
    """One server-sent event and when it arrived (monotonic seconds)."""

    id: str
    event: str
    data: dict[str, Any]
    at: float


def read_sse(http: httpx.Client, url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[list[Received], float]:
    """Read an event stream to its end; returns the events and when the stream opened."""
    events: list[Received] = []
    fields: dict[str, str] = {}
    with http.stream("GET", url, headers={"Accept": "text/event-stream", **(headers or {})}, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        opened = time.monotonic()
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line == "":
                if "data" in fields:
                    events.append(Received(fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"]), time.monotonic()))
                fields = {}
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events, opened


def test_sse_follows_a_running_workflow_until_it_finishes(gateway: GatewayThread) -> None:
    """The stream delivers the events logged before it opened and the ones appended while it is open."""
    with gateway.client() as http:
        execution_id = http.post(f"/v1/functions/{WF}.sleepy", json={"ms": 1500}).json()["execution_id"]
        events, opened = read_sse(http, f"/v1/executions/{execution_id}/events")
    types = [e.event for e in events]
    assert types[0] == "created"
    assert types[-1] == "finished"
    assert "delay_requested" in types
    assert [int(e.id) for e in events] == list(range(len(events)))
    assert all(e.data["type"] == e.event and e.data["index"] == int(e.id) for e in events)
    # The durable sleep ends ~1.5 s after the start: `finished` arrived live, well after the stream opened.
    assert events[-1].at - opened > 0.8
    assert events[-1].data["result"] >= 1500


def test_sse_of_a_finished_execution_replays_the_log_and_ends(gateway: GatewayThread) -> None:
    """A stream for a finished execution sends its whole log and closes."""
    with gateway.client() as http:
        execution_id = http.post(f"/v1/functions/{WF}.serial?wait=30", json=[2]).json()["execution_id"]
        events, _ = read_sse(http, f"/v1/executions/{execution_id}/events", timeout=10)
        logged = http.get(f"/v1/executions/{execution_id}/events").json()["events"]
    assert [e.data for e in events] == logged


def test_sse_resumes_after_last_event_id(gateway: GatewayThread) -> None:
    """Reconnecting with Last-Event-ID sends only the events after it."""
    with gateway.client() as http:
        execution_id = http.post(f"/v1/functions/{WF}.serial?wait=30", json=[3]).json()["execution_id"]
        events, _ = read_sse(http, f"/v1/executions/{execution_id}/events", headers={"Last-Event-ID": "3"}, timeout=10)
    assert int(events[0].id) == 4
    assert events[-1].event == "finished"


def test_sse_for_an_unknown_execution_is_404(gateway: GatewayThread) -> None:
    """Asking to stream an execution that does not exist answers 404 JSON, not an empty stream."""
    with gateway.client() as http:
        response = http.get("/v1/executions/E_01JD8X3K5QZ6V2N4M7P9R0S1T2/events", headers={"Accept": "text/event-stream"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
