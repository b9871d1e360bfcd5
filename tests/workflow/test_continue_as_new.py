"""Long-running workflows: continue-as-new chains and the history limit, on real runner processes.

The chain test runs `DOLMEN_CHAIN_LINKS` executions (default 200; the issue's
full size is 10000): every one's log stays under the history limit, and the
chain is followed both ways, by waiting on its first execution and by
walking `continued_from` back from its last.

The tests on the chain workflow with the history limit share one runner and scheduler on a
Valkey of the module's own (tests/support/shared.py); the gc test has its own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dolmen.gateway.settings import GatewaySettings
from dolmen.platform.client import Client
from dolmen.platform.deploy.gc import GcPolicy, collect
from dolmen.platform.model import ComponentConfig, HistoryLimit
from dolmen.platform.store import keys
from dolmen.platform.store.async_executions import AsyncExecutions
from dolmen.platform.store.connection import aclose, connect, connect_async
from dolmen.platform.store.records import FINISHED, ExecutionState
from dolmen.platform.workflow.sandbox import WorkflowSandbox
from dolmen.platform.workflow.verify import verify
from tests.gateway.helpers import GatewayThread
from tests.support.guests import DATA_DIR, build_guest, load_guest, new_loader
from tests.support.platform import Processes, activity, deploy
from tests.support.polling import wait_for
from tests.support.shared import SharedPlatform, settle_leftovers, shared_platform

C = "testing:chain/flows@1.0.0"
LINKS = int(os.environ.get("DOLMEN_CHAIN_LINKS") or "200")
STEPS = 3
# created, STEPS join sets, finished: a limit that a link stays under, and that a log never continued reaches.
LIMIT = HistoryLimit(max_events=STEPS + 5, max_bytes=64 * 1024)


def chain_workflow(**settings: object) -> tuple[ComponentConfig, Path]:
    return (
        ComponentConfig("chain", "workflow", "", "tests/components/wf-chain", {}, **settings),  # type: ignore[arg-type]
        build_guest("wf-chain", "chain"),
    )


@pytest.fixture(scope="module")
def shared_chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    """The chain workflow with the history limit deployed, a runner (4 threads) and a scheduler: one for the module."""
    with shared_platform(tmp_path_factory.mktemp("chains"), [chain_workflow(history=LIMIT)], runner_args=("--concurrency", "4"), gateway=False) as platform:
        yield platform


@pytest.fixture
def chain_platform(shared_chains: SharedPlatform) -> Iterator[SharedPlatform]:
    """The module's platform; what a test leaves unfinished is cancelled after it."""
    yield shared_chains
    settle_leftovers(shared_chains.url)


@pytest.fixture
def chain_client(chain_platform: SharedPlatform) -> Iterator[Client]:
    """A client of the module's platform."""
    c = Client.connect(chain_platform.url)
    yield c
    c.close()


def test_a_chain_keeps_every_log_under_the_limit_and_can_be_followed(chain_client: Client) -> None:
    client = chain_client
    first = client.submit(f"{C}.count", [0, LINKS, STEPS]).execution_id
    last = client.wait(first, timeout_s=60 + LINKS * 0.5)
    assert last.status == "finished" and last.outcome is not None
    assert last.outcome.value == LINKS, last.to_json()
    assert last.extra["chain"] == first and int(last.extra["chain_index"]) == LINKS
    assert last.to_json()["chain"] == first and last.to_json()["chain_index"] == LINKS

    # Walk back from the last execution: each link continued as the next one, with the next params.
    seen: list[ExecutionState] = [last]
    state = last
    while state.extra.get("continued_from"):
        before = client.executions.require(state.extra["continued_from"])
        assert before.outcome is not None and before.outcome.continued_as == state.id
        assert before.to_json()["continued_as"] == state.id and "result" not in before.to_json()
        seen.append(before)
        state = before
    assert state.id == first and len(seen) == LINKS + 1
    # The head pointer names the last execution: a reader gets there in one read (see store/chains.py).
    assert client.redis.get(keys.chain_head(first)) == f"{LINKS} {last.id}".encode()
    assert client.redis.pttl(keys.chain_head(first)) > 7 * 86_400_000
    for index, link in enumerate(reversed(seen)):
        assert link.params == [index, LINKS, STEPS]
        events = client.executions.events(link.id)
        assert len(events) <= LIMIT.max_events
        assert [e.type for e in events] == ["created"] + ["join_set_created"] * STEPS + ["finished"]
        if link.id != last.id:
            assert events[-1].data == {"continued_as": seen[len(seen) - 2 - index].id, "params": [index + 1, LINKS, STEPS]}

    # A continued log replays cleanly on the same code, and not on params it did not log.
    events = client.executions.events(first)
    loaded = load_guest(new_loader("workflow"), "wf-chain", "chain")
    assert verify(WorkflowSandbox(), loaded, first, f"{C}.count", events).ok
    altered = events[:-1] + [type(events[-1])(events[-1].index, FINISHED, {**events[-1].data, "params": [9, LINKS, STEPS]}, events[-1].at)]
    verdict = verify(WorkflowSandbox(), loaded, first, f"{C}.count", altered)
    assert not verdict.ok and "continue-as-new [1," in verdict.message


def test_the_gateway_answers_with_the_chains_end_also_to_a_replayed_submission(chain_platform: SharedPlatform) -> None:
    """`?wait=` follows the chain; so does a repeat with the same Idempotency-Key, and `GET .../result`."""
    gateway = GatewayThread(GatewaySettings(redis_url=chain_platform.url, data_dir=DATA_DIR)).start()
    try:
        with gateway.client() as http:
            url, key = f"/v1/functions/{C}.count", {"Idempotency-Key": f"chain-{uuid.uuid4()}"}
            first = http.post(url, params={"wait": "60"}, json=[0, 20, 1], headers=key)
            assert first.status_code == 200 and first.json()["result"] == 20, first.text
            chain = first.json()["chain"]
            assert first.json()["execution_id"] != chain and first.json()["chain_index"] == 20
            again = http.post(url, params={"wait": "60"}, json=[0, 20, 1], headers=key)
            assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
            assert again.json()["result"] == 20 and again.json()["execution_id"] == first.json()["execution_id"]
            at_once = http.post(url, json=[0, 20, 1], headers=key)  # no wait: where the chain is now
            assert at_once.json()["result"] == 20
            result = http.get(f"/v1/executions/{chain}/result", params={"wait": "5"})
            assert result.status_code == 200 and result.json()["result"] == 20
            head = http.get(f"/v1/executions/{chain}").json()
            assert head["continued_as"] and "result" not in head
            cancelled = http.post(f"/v1/executions/{chain}/cancel")  # where the chain is now: its finished end
            assert cancelled.status_code == 409 and first.json()["execution_id"] in cancelled.text
            # While a chain runs, its result is never a 200, even caught between two of its executions.
            running = http.post(url, json=[0, 1_000_000, 1]).json()["execution_id"]
            answers = [http.get(f"/v1/executions/{running}/result", params={"wait": w}) for w in ("0", "0.05") * 20]
            assert {a.status_code for a in answers} == {202}, [a.text for a in answers if a.status_code != 202]
            assert {a.json()["status"] for a in answers} <= {"pending", "running"}
            stopped = http.post(f"/v1/executions/{running}/cancel").json()
            assert stopped["chain"] == running and stopped["execution_id"] != running
    finally:
        gateway.stop()


def test_over_the_history_limit_an_execution_fails_naming_continue_as_new(chain_client: Client) -> None:
    client = chain_client
    execution_id = client.submit(f"{C}.forever", []).execution_id
    state = client.wait(execution_id, 60)
    assert state.outcome is not None and state.outcome.failure is not None, state.to_json()
    failure = state.outcome.failure
    assert failure.kind == "history_limit"
    assert "continue-as-new" in failure.message and f"over its limit of {LIMIT.max_events}" in failure.message
    assert state.attempt == 1  # final: the same code grows the same log again
    assert len(client.executions.events(execution_id)) <= LIMIT.max_events + 1


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("type", "continue-as-new params do not fit testing:chain/flows@1.0.0.bad-params: params[0]"),
        ("arity", "expected 1 parameter (how), got 2"),
        ("json", "not JSON"),
        ("name", "params.count: unknown parameter; the function takes how"),
    ],
)
def test_params_that_do_not_fit_fail_the_execution_and_start_nothing(chain_client: Client, how: str, expected: str) -> None:
    client = chain_client
    execution_id = client.submit(f"{C}.bad-params", [how]).execution_id
    state = client.wait(execution_id, 60)
    assert state.outcome is not None and state.outcome.failure is not None, state.to_json()
    assert state.outcome.failure.kind == "trap" and state.attempt == 1
    assert expected in state.outcome.failure.message and "continue-as-new" in state.outcome.failure.message
    assert state.outcome.continued_as is None


def test_the_sync_and_async_stores_reach_the_same_end_of_a_chain(
    chain_client: Client, chain_platform: SharedPlatform
) -> None:
    """Waited on from its first execution while it runs, a chain ends at the same execution for both stores; `chain_end` finds it too."""
    links = 20
    first = chain_client.submit(f"{C}.count", [0, links, 1]).execution_id

    async def read() -> tuple[ExecutionState, ExecutionState]:
        aredis = connect_async(chain_platform.url)
        store = AsyncExecutions(aredis)
        try:
            return await store.wait_finished(first, 60), await store.chain_end(first)
        finally:
            await store.close()
            await store.batcher.close()
            await aclose(aredis)

    waited, end = asyncio.run(read())
    last = chain_client.executions.wait_finished(first, 60)
    assert last.outcome is not None and last.outcome.value == links, last.to_json()
    assert waited.id == end.id == last.id == chain_client.executions.chain_end(first).id
    assert waited.outcome == last.outcome


def test_cancelling_a_chain_cancels_where_it_is_now(chain_client: Client) -> None:
    client = chain_client
    first = client.submit(f"{C}.count", [0, 1_000_000, 1]).execution_id

    def moved_on() -> bool:
        state = client.executions.require(first)
        return state.outcome is not None and state.outcome.continued_as is not None

    wait_for(moved_on, timeout=60)
    assert client.cancel(first) in ("requested", "cancelled")
    last = client.wait(first, 60)
    assert last.id != first and last.outcome is not None and last.outcome.failure is not None
    assert last.outcome.failure.kind == "cancelled"
    # The chain ends at the cancelled execution: nothing continues it.
    assert client.executions.require(last.id).outcome == last.outcome
    index = int(last.extra["chain_index"])
    assert index >= 1


def test_gc_keeps_what_a_running_chain_runs_on_while_it_moves_on(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """The chain's function leaves the deployment; gc runs over and over while the chain hands over.

    Between one execution finishing and its successor being listed there was
    a moment when nothing listed the chain: gc removed its component then,
    and the successor never ran. The finished execution now stays listed
    until its successor is (`outbox.index_msg(replaces=)`).
    """
    first_revision = deploy(redis_url, [chain_workflow()])
    digest = first_revision.components[0].digest
    processes.runner("--concurrency", "4")
    processes.scheduler()
    links = 150
    first = client.submit(f"{C}.count", [0, links, 1]).execution_id
    deploy(redis_url, [activity()])  # the chain's function is no longer deployed: it runs on on its digest
    redis_ = connect(redis_url)
    collections = 0
    while (state := client.wait(first, 0)).outcome is None or state.outcome.continued_as is not None:
        collect(redis_, None, GcPolicy(keep=1, grace_ms=0))
        collections += 1
        if not redis_.exists(keys.blob(digest)):
            # Only right as the chain ends may its component go.
            ended = client.wait(first, 0)
            assert ended.outcome is not None and ended.outcome.value == links, (
                f"gc removed {digest} while the chain ran (after {collections} runs): {ended.to_json()}"
            )
    assert state.outcome is not None and state.outcome.value == links and state.digest == digest
    assert collections > 3
