"""Which running workflows may move to a new component, decided without I/O.

A deployment that routes a workflow ffqn to a new digest produces a
`FunctionChange`. Each unfinished execution of that ffqn on another digest is
then decided by `decide`: with `verified` it moves only if its whole log
replays cleanly on the new component (the `Verdict` of `workflow.verify`),
with `pinned` it never moves, with `force` it moves unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..store.records import UPGRADE_REJECTED, Event
from ..workflow.verify import Verdict
from ..model import ComponentConfig, Revision, UpgradePolicy

Action = Literal["upgrade", "reject", "keep"]


@dataclass(frozen=True, slots=True)
class FunctionChange:
    """A workflow ffqn now routed to `to_digest`; its running executions are candidates to move."""

    ffqn: str
    to_digest: str
    to_component: str
    policy: UpgradePolicy
    to_revision: int | None = None
    from_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Every field by name, as a queued upgrade request stores it."""
        return {
            "ffqn": self.ffqn,
            "to_digest": self.to_digest,
            "to_component": self.to_component,
            "policy": self.policy,
            "to_revision": self.to_revision,
            "from_digest": self.from_digest,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunctionChange:
        """The inverse of `to_json`."""
        return cls(
            data["ffqn"], data["to_digest"], data["to_component"], data["policy"], data.get("to_revision"), data.get("from_digest")
        )


def changed_workflows(previous: Revision | None, components: tuple[ComponentConfig, ...] | list[ComponentConfig], revision: int | None = None) -> list[FunctionChange]:
    """The workflow ffqns the `previous` revision routed to another digest (sorted by ffqn)."""
    before = previous.functions() if previous is not None else {}
    changes: list[FunctionChange] = []
    for comp in components:
        if comp.kind != "workflow":
            continue
        for ffqn in comp.functions:
            old = before.get(ffqn)
            # A function the previous revision did not route has nothing running that expects
            # this deployment to move it; `platform upgrade` moves older executions on demand.
            if old is None or old.component.digest == comp.digest:
                continue
            changes.append(FunctionChange(ffqn, comp.digest, comp.name, comp.upgrade, revision, old.component.digest))
    return sorted(changes, key=lambda c: c.ffqn)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one running execution, and why."""

    action: Action
    reason: str
    verdict: Verdict | None = None


def decide(policy: UpgradePolicy, verdict: Verdict | None) -> Decision:
    """`verified` follows the replay verdict, `pinned` keeps, `force` moves (no verdict needed).

    Pure. ValueError for `verified` without a verdict.
    """
    if policy == "pinned":
        return Decision("keep", "the component's upgrade policy is 'pinned'")
    if policy == "force":
        return Decision("upgrade", "forced (not replay-checked)", verdict)
    if verdict is None:  # pragma: no cover - the driver always verifies under 'verified'
        raise ValueError("a verified upgrade needs a replay verdict")
    if verdict.ok:
        return Decision("upgrade", f"its {verdict.events} events replay cleanly", verdict)
    return Decision("reject", verdict.message or "its log does not replay on the new component", verdict)


def rejected_before(events: list[Event], to_digest: str) -> Event | None:
    """The `upgrade_rejected` event recorded for `to_digest`, if any: a divergence never heals."""
    for event in events:
        if event.type == UPGRADE_REJECTED and event.data.get("to") == to_digest:
            return event
    return None


def upgraded_data(change: FunctionChange, from_digest: str, decision: Decision) -> dict[str, Any]:
    """The data of the `upgraded` event."""
    data: dict[str, Any] = {
        "from": from_digest,
        "to": change.to_digest,
        "events_verified": decision.verdict.events if decision.verdict is not None and decision.verdict.ok else 0,
        "component": change.to_component,
    }
    if change.to_revision is not None:
        data["revision"] = change.to_revision
    if change.policy == "force":
        data["forced"] = True
    return data


def rejected_data(change: FunctionChange, from_digest: str, verdict: Verdict) -> dict[str, Any]:
    """The data of the `upgrade_rejected` event: the first diverging event."""
    data: dict[str, Any] = {
        "from": from_digest,
        "to": change.to_digest,
        "event_index": verdict.event_index,
        "logged": verdict.logged,
        "requested": verdict.requested,
        "message": verdict.message,
    }
    if change.to_revision is not None:
        data["revision"] = change.to_revision
    return data


def describe_divergence(verdict: Verdict | None) -> str:
    """`event 5: log has X, code asked for Y` (or the verdict's message)."""
    if verdict is None or verdict.ok:
        return ""
    if verdict.event_index is None:
        return verdict.message
    return f"event {verdict.event_index}: the log holds {verdict.logged}, the new code asked for {verdict.requested}"

