"""Platform-wide function limits on real runner processes: at most N at once across runners, starts spaced by a rate.

The limited activity calls a local HTTP server that records when each call
arrives and how many are inside at once: what a rate-limited API would see.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import FunctionLimits
from dolmen.platform.store.heartbeats import read_processes
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.polling import wait_for
from tests.support.servers import LocalHttp

A = "testing:act/basic@1.0.0"
LOCAL = ("127.0.0.1:*",)


class SlowApi(LocalHttp):
    """A local HTTP server that keeps each request `hold_s` seconds, recording arrivals and the most inside at once."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.arrivals: list[float] = []
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()
        super().__init__(self._answer, "/work")

    def _answer(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            self.arrivals.append(time.monotonic())
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(self.hold_s)
        with self._lock:
            self.inside -= 1
        return 200, b"done"


@pytest.fixture
def api() -> Iterator[SlowApi]:
    server = SlowApi(hold_s=0.2)
    yield server
    server.close()


def _all_finished(client: Client, ids: list[str]) -> bool:
    states = [client.executions.get(i) for i in ids]
    return all(s is not None and s.status == "finished" for s in states)


def test_a_concurrency_limit_of_2_holds_across_two_runner_processes(
    redis_url: str, processes: Processes, client: Client, api: SlowApi
) -> None:
    """Sixteen calls, two runners with four threads each: never more than two inside the API, and both runners take part."""
    deploy(redis_url, [activity(allowed_hosts=LOCAL, limits=FunctionLimits(max_running=2))])
    processes.fleet("r1", "r2", concurrency=4)
    ids = [client.submit(f"{A}.fetch", [api.url]).execution_id for _ in range(16)]
    wait_for(lambda: _all_finished(client, ids), timeout=90, what="the sixteen limited calls to finish")
    assert len(api.arrivals) == 16
    assert api.most_inside == 2  # the limit was reached, never passed
    for execution_id in ids:
        state = client.executions.get(execution_id)
        assert state is not None and state.outcome is not None and state.outcome.value == {"ok": "done"}
    # Each runner ran some: the limit held across processes, not within one. (Heartbeats tell a second late.)
    def processed() -> dict[str, int]:
        return {p.details.get("owner"): p.details.get("processed", 0) for p in read_processes(client.redis) if p.kind == "runner"}

    def all_told() -> dict[str, int] | None:
        counts = processed()
        return counts if sum(counts.values()) >= 16 else None

    # Freed slots go to whichever runner looks first: both get some, but for a chance of 2 in 2**16.
    counts = wait_for(all_told, timeout=30, what="the runners' heartbeats to count the sixteen")
    assert counts.get("r1", 0) > 0 and counts.get("r2", 0) > 0, counts
    assert client.redis.zcard(f"dolmen:{{lim:{A}.fetch}}:running") == 0  # every permit given back


def test_a_rate_limit_spaces_the_starts_across_runners(redis_url: str, processes: Processes, client: Client, api: SlowApi) -> None:
    """At 5 starts/s, six calls take at least a second to start (unlimited, they start within a fraction of one)."""
    deploy(redis_url, [activity(allowed_hosts=LOCAL, limits=FunctionLimits(starts_per_second=5))])
    processes.fleet("r1", "r2", concurrency=4)
    # Both runners load the component first: a first call's load, hundreds of ms on a loaded machine, would
    # delay the first arrival past the ones after it and shrink the span measured below.
    warm = [client.submit(f"{A}.double", [i]).execution_id for i in range(16)]
    wait_for(lambda: _all_finished(client, warm), timeout=90, what="the warm-up calls to finish")

    def both_ran() -> bool:
        counts = {p.details.get("owner"): p.details.get("processed", 0) for p in read_processes(client.redis) if p.kind == "runner"}
        return counts.get("r1", 0) > 0 and counts.get("r2", 0) > 0

    wait_for(both_ran, timeout=30, what="both runners to have run a warm-up call (heartbeats tell a second late)")
    ids = [client.submit(f"{A}.fetch", [api.url]).execution_id for _ in range(6)]
    wait_for(lambda: _all_finished(client, ids), timeout=90, what="the six rate-limited calls to finish")
    arrivals = sorted(api.arrivals)
    # Locks are 200 ms apart; an arrival is its lock plus an instantiation that varies by tens of ms.
    assert arrivals[-1] - arrivals[0] >= 5 * 0.2 - 0.15, arrivals


def test_a_workflow_s_join_set_children_of_a_limited_activity_wait_their_turn(
    redis_url: str, processes: Processes, client: Client, api: SlowApi
) -> None:
    """Join-set children of a limited activity go through its queue: never run at once by the workflow's runner."""
    deploy(redis_url, [activity(allowed_hosts=LOCAL, limits=FunctionLimits(max_running=1)), workflow()])
    processes.fleet("r1", concurrency=4)
    parent = client.submit("testing:wf/flows@1.0.0.fetch-all", [[api.url] * 4]).execution_id
    wait_for(lambda: _all_finished(client, [parent]), timeout=90, what="the workflow to finish")
    state = client.executions.get(parent)
    assert state is not None and state.outcome is not None and state.outcome.value == [{"ok": "done"}] * 4
    assert len(api.arrivals) == 4 and api.most_inside == 1
