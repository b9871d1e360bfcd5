"""`platform versions`: which digests still run, for which function, from which revision."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


from ..store.deployments import DeploymentStore
from ..store.executions import ExecutionStore
from ..store.records import ExecutionState
from ..model import Revision
from ..store.connection import StoreClient


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One digest of one function: its unfinished executions and the revisions they were started from."""

    ffqn: str
    digest: str
    unfinished: int
    revisions: tuple[int, ...]
    components: tuple[str, ...]
    active: bool

    def to_json(self) -> dict[str, Any]:
        """`platform versions --json`'s row: every field by name."""
        return {
            "ffqn": self.ffqn,
            "digest": self.digest,
            "unfinished": self.unfinished,
            "revisions": list(self.revisions),
            "components": list(self.components),
            "active": self.active,
        }


def summarize(states: Iterable[ExecutionState], active: Revision | None, ffqn: str | None = None) -> list[VersionRow]:
    """Group unfinished executions by function and digest; the active route of each function is listed too."""
    groups: dict[tuple[str, str], list[ExecutionState]] = {}
    for state in states:
        if not state.live or (ffqn is not None and state.ffqn != ffqn):
            continue
        groups.setdefault((state.ffqn, state.digest), []).append(state)
    routes = active.functions() if active is not None else {}
    for name, route in routes.items():
        if ffqn is None or name == ffqn:
            groups.setdefault((name, route.component.digest), [])
    rows: list[VersionRow] = []
    for (name, digest), members in groups.items():
        route = routes.get(name)
        is_active = route is not None and route.component.digest == digest
        revisions = sorted({s.revision for s in members if s.revision is not None})
        components = sorted({s.component for s in members if s.component})
        if is_active and route is not None and active is not None:
            revisions = sorted({*revisions, active.number})
            components = sorted({*components, route.component.name})
        rows.append(VersionRow(name, digest, len(members), tuple(revisions), tuple(components), is_active))
    return sorted(rows, key=lambda r: (r.ffqn, not r.active, r.digest))


def unfinished(client: StoreClient) -> list[ExecutionState]:
    """Every execution that has not finished, or that continued as new (its chain goes on), from the `active` index."""
    return ExecutionStore(client).live_states()


def versions(client: StoreClient, ffqn: str | None = None) -> list[VersionRow]:
    """The rows of `platform versions`."""
    return summarize(unfinished(client), DeploymentStore(client).active(), ffqn)
