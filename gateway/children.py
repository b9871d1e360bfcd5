"""A workflow's children as `GET /v1/executions/{id}/children` tells them, forks included.

A fork copies its source's `child_submitted` and `response` events for the children
that had answered, renamed under the fork (`E_fork.1`), but never creates those
children: their results are in the copied log. They are reported apart, as
`copied`, with the id of the original run's child, and a read of such an id is
answered with a 404 that says so rather than "does not exist".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..platform.store.records import CHILD_SUBMITTED, CREATED, RESPONSE, Event


@dataclass(frozen=True, slots=True)
class CopiedChild:
    """A child whose submission and response a fork copied from its source, and which was never created.

    `original_id` is the source's child ('' when unknown), `response` the copied `response` event's data
    without `child_id` (`result` or `failure`).
    """

    child_id: str
    original_id: str
    fork_id: str
    ffqn: str
    params: Any
    response: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """An item of the children listing's `copied`: `child_id`, `original_id`, `ffqn`, `params`, `response`."""
        return {
            "child_id": self.child_id,
            "original_id": self.original_id,
            "ffqn": self.ffqn,
            "params": self.params,
            "response": self.response,
        }


def submitted_children(events: list[Event]) -> list[str]:
    """The ids of the children a log submitted, in submission order."""
    return [str(e.data["child_id"]) for e in events if e.type == CHILD_SUBMITTED]


def copied_children(execution_id: str, events: list[Event]) -> dict[str, CopiedChild]:
    """The children of a fork's log (by id) that the fork copied answered from its source: never created."""
    if not events or events[0].type != CREATED:
        return {}
    forked = events[0].data.get("forked_from")
    if not isinstance(forked, dict) or not isinstance(forked.get("execution_id"), str):
        return {}
    source = str(forked["execution_id"])
    count = forked.get("copied")
    # A fork written before `copied` was recorded: the copied events are the ones written before the fork was.
    prefix = events[: count if isinstance(count, int) else len(events)]
    responses = {str(e.data["child_id"]): e.data for e in prefix if e.type == RESPONSE and e.data.get("child_id")}
    out: dict[str, CopiedChild] = {}
    for event in prefix:
        child_id = str(event.data.get("child_id", ""))
        if event.type != CHILD_SUBMITTED or child_id not in responses:
            continue
        suffix = child_id[len(execution_id) :] if child_id.startswith(execution_id + ".") else ""
        response = {k: v for k, v in responses[child_id].items() if k != "child_id"}
        out[child_id] = CopiedChild(
            child_id, source + suffix if suffix else "", execution_id, str(event.data.get("ffqn", "")),
            event.data.get("params"), response,
        )  # fmt: skip
    return out


def copied_message(child: CopiedChild) -> str:
    """The 404 for a read of a child a fork only copied."""
    original = f" ({child.original_id})" if child.original_id else ""
    return (
        f"execution {child.child_id} was never created: fork {child.fork_id} copied this child's submission and "
        f"response from the original run{original} instead of starting it again; "
        f"GET /v1/executions/{child.fork_id}/children lists it under `copied`"
    )
