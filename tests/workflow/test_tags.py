"""Tags on real runner processes: what a tagged workflow starts carries its tags, and is listed by them."""

from __future__ import annotations

import uuid
from pathlib import Path

from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig
from dolmen.platform.deploy.reruns import fork_execution, rerun_execution
from tests.support.guests import DATA_DIR, build_guest
from tests.support.platform import Processes, activity, deploy, workflow

F = "testing:wf/flows@1.0.0"
P = "testing:parent/parents@1.0.0"
C = "testing:chain/flows@1.0.0"


def parent_workflow() -> tuple[ComponentConfig, Path]:
    return ComponentConfig("parent", "workflow", "", "tests/components/wf-parent", {}), build_guest("wf-parent", "parent-flows")


def chain_workflow() -> tuple[ComponentConfig, Path]:
    return ComponentConfig("chain", "workflow", "", "tests/components/wf-chain", {}), build_guest("wf-chain", "chain")


def tree(client: Client, root: str) -> list[str]:
    """The root and every descendant, from the logs' `child_submitted` events."""
    out, frontier = [], [root]
    while frontier:
        out += frontier
        frontier = [child for execution_id in frontier for child in client.executions.children(execution_id)]
    return out


def test_children_and_scheduled_executions_inherit_tags_and_are_listed_by_them(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """Direct (inline-run) children, join-set children, grandchildren, a fork's and a rerun's trees and a scheduled workflow's tree carry the root's tags."""
    deploy(redis_url, [activity(), workflow(), parent_workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()
    run = uuid.uuid4().hex
    tags = {"customer": "acme", "run": run}

    nested = client.submit(f"{P}.nested", [2], tags=tags).execution_id
    assert client.wait(nested, 120).outcome.value == [6, 6]  # type: ignore[union-attr]
    nested_tree = tree(client, nested)
    assert len(nested_tree) == 7  # root, serial + its 2 calls, fan-out + its 2 join-set children
    assert all(client.get(e).tags == tags for e in nested_tree)
    assert all(client.executions.events(e)[0].data["tags"] == tags for e in nested_tree)

    forked = fork_execution(client.redis, DATA_DIR, nested, 2)
    assert forked.restarted, "the fork restarts the child its copied prefix had not heard from"
    rerun = rerun_execution(client.redis, DATA_DIR, nested)
    for copy in (forked.execution_id, rerun.execution_id):
        assert client.wait(copy, 120).status == "finished"
        copied_tree = tree(client, copy)
        assert len(copied_tree) == 7 and all(client.get(e).tags == tags for e in copied_tree)

    later = client.submit(f"{P}.later", [2, 100], tags=tags).execution_id
    scheduled = client.wait(later, 60).outcome.value  # type: ignore[union-attr]
    assert client.wait(scheduled, 60).status == "finished"
    scheduled_tree = tree(client, scheduled)
    assert len(scheduled_tree) == 3 and client.get(scheduled).parent is None
    assert all(client.get(e).tags == tags for e in scheduled_tree)

    untagged = client.submit(f"{F}.serial", [1]).execution_id
    assert client.wait(untagged, 60).status == "finished"
    assert all(client.get(e).tags == {} for e in tree(client, untagged))

    listed = {s.id for s in client.executions.list(tags=[("run", run)], limit=100)[0]}
    assert listed == {*nested_tree, *tree(client, forked.execution_id), *tree(client, rerun.execution_id), later, *scheduled_tree}
    roots = client.executions.list(tags=[("run", run), ("customer", "acme")], ffqn=f"{P}.nested")[0]
    assert [s.id for s in roots] == [rerun.execution_id, forked.execution_id, nested]  # newest first


def test_every_execution_of_a_continue_as_new_chain_carries_the_first_ones_tags(
    redis_url: str, processes: Processes, client: Client
) -> None:
    """A chain of four links started with a tag: each link has it, and listing by it gives the whole chain."""
    deploy(redis_url, [chain_workflow()])
    processes.runner()
    processes.scheduler()
    run = uuid.uuid4().hex
    first = client.submit(f"{C}.count", [0, 3, 1], tags={"run": run}).execution_id
    last = client.wait(first, 60)
    assert last.status == "finished" and last.outcome is not None and last.outcome.value == 3
    chain = [last]
    while chain[-1].extra.get("continued_from"):
        chain.append(client.get(chain[-1].extra["continued_from"]))
    assert len(chain) == 4 and chain[-1].id == first
    assert all(link.tags == {"run": run} for link in chain)
    assert [s.id for s in client.executions.list(tags=[("run", run)])[0]] == [link.id for link in chain]
