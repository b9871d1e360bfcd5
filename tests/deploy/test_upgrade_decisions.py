"""The pure upgrade decisions: which ffqns changed, and what happens to each running execution."""

from __future__ import annotations

import pytest

from dolmen.platform.model import ComponentConfig, Revision
from dolmen.platform.deploy.upgrade_decisions import (
    FunctionChange,
    changed_workflows,
    decide,
    describe_divergence,
    rejected_before,
    rejected_data,
    upgraded_data,
)
from dolmen.platform.deploy.versions import summarize
from dolmen.platform.errors import NotFoundError
from dolmen.platform.store.records import Event, ExecutionState
from dolmen.platform.wit.types import FunctionType, Prim
from dolmen.platform.workflow.verify import Verdict

RUN = FunctionType((), Prim("u64"))


def config(name: str, kind: str, digest: str, *ffqns: str, upgrade: str = "verified") -> ComponentConfig:
    return ComponentConfig(name, kind, digest, "", {f: RUN for f in ffqns}, upgrade=upgrade)  # type: ignore[arg-type]


def revision(number: int, *components: ComponentConfig) -> Revision:
    return Revision(number, "shop", 0, components)


V1 = revision(1, config("act", "activity", "sha256:a1", "t:a/a@1.0.0.f"), config("wf", "workflow", "sha256:w1", "t:w/w@1.0.0.run", "t:w/w@1.0.0.other"))


def test_only_workflows_whose_digest_changed_are_upgraded() -> None:
    """A new workflow digest yields one change per ffqn; activities and unchanged workflows none."""
    new = (config("act", "activity", "sha256:a2", "t:a/a@1.0.0.f"), config("wf", "workflow", "sha256:w2", "t:w/w@1.0.0.run", "t:w/w@1.0.0.other", upgrade="force"))
    changes = changed_workflows(V1, new, revision=2)
    assert [(c.ffqn, c.from_digest, c.to_digest, c.policy, c.to_revision) for c in changes] == [
        ("t:w/w@1.0.0.other", "sha256:w1", "sha256:w2", "force", 2),
        ("t:w/w@1.0.0.run", "sha256:w1", "sha256:w2", "force", 2),
    ]
    assert changed_workflows(V1, V1.components) == []


def test_first_deployment_and_new_functions_move_nothing() -> None:
    """A first deployment, and a function the previous revision did not route, produce no change."""
    assert changed_workflows(None, V1.components) == []
    new = (config("wf", "workflow", "sha256:w1", "t:w/w@1.0.0.run", "t:w/w@1.0.0.other"), config("wf2", "workflow", "sha256:x", "t:w/w@2.0.0.run"))
    assert changed_workflows(V1, new) == []


def test_decisions_follow_the_policy_and_the_verdict() -> None:
    """verified follows the replay, pinned keeps, force moves without a verdict."""
    clean = Verdict(True, 12)
    diverged = Verdict(False, 12, 5, "child_submitted(ffqn=\"a\")", "child_submitted(ffqn=\"b\")", "non-determinism at event 5: ...")
    assert decide("verified", clean).action == "upgrade"
    rejected = decide("verified", diverged)
    assert rejected.action == "reject" and rejected.verdict is diverged
    assert decide("pinned", clean).action == "keep"
    assert decide("force", None).action == "upgrade"
    assert describe_divergence(diverged) == 'event 5: the log holds child_submitted(ffqn="a"), the new code asked for child_submitted(ffqn="b")'


def test_event_payloads_name_both_digests_and_the_divergence() -> None:
    """`upgraded` names from, to and events verified; `upgrade_rejected` the first diverging event."""
    change = FunctionChange("t:w/w@1.0.0.run", "sha256:w2", "wf", "verified", 2, "sha256:w1")
    data = upgraded_data(change, "sha256:w1", decide("verified", Verdict(True, 9)))
    assert data == {"from": "sha256:w1", "to": "sha256:w2", "events_verified": 9, "component": "wf", "revision": 2}
    forced = upgraded_data(FunctionChange("f", "sha256:w2", "wf", "force"), "sha256:w1", decide("force", None))
    assert forced["forced"] is True and forced["events_verified"] == 0
    rejected = rejected_data(change, "sha256:w1", Verdict(False, 9, 4, "x", "y", "msg"))
    assert (rejected["event_index"], rejected["logged"], rejected["requested"], rejected["to"]) == (4, "x", "y", "sha256:w2")


def test_a_rejection_is_remembered_per_target_digest() -> None:
    """An execution rejected for a digest is not replayed against it again, but is for another one."""
    events = [Event(0, "created", {}, 1), Event(1, "upgrade_rejected", {"to": "sha256:w2"}, 2)]
    assert rejected_before(events, "sha256:w2") is events[1]
    assert rejected_before(events, "sha256:w3") is None


def test_change_round_trips_through_json() -> None:
    """A queued change reads back equal."""
    change = FunctionChange("t:w/w@1.0.0.run", "sha256:w2", "wf", "verified", 2, "sha256:w1")
    assert FunctionChange.from_json(change.to_json()) == change


def state(eid: str, ffqn: str, digest: str, rev: int | None, status: str = "blocked") -> ExecutionState:
    return ExecutionState(eid, ffqn, "workflow", digest, status, 1, 1, 0, 0, [], revision=rev, component="wf")  # type: ignore[arg-type]


def test_versions_group_unfinished_executions_by_digest() -> None:
    """Each digest with unfinished executions is counted; the active route is listed even with none."""
    states = [
        state("E_1", "t:w/w@1.0.0.run", "sha256:w0", 1),
        state("E_2", "t:w/w@1.0.0.run", "sha256:w0", 1),
        state("E_3", "t:w/w@1.0.0.run", "sha256:w1", 2),
        state("E_4", "t:w/w@1.0.0.run", "sha256:w1", 2, status="finished"),
    ]
    rows = summarize(states, V1)
    run = [(r.digest, r.unfinished, r.revisions, r.active) for r in rows if r.ffqn == "t:w/w@1.0.0.run"]
    assert run == [("sha256:w1", 1, (1, 2), True), ("sha256:w0", 2, (1,), False)]
    assert [r.ffqn for r in summarize(states, V1, "t:a/a@1.0.0.f")] == ["t:a/a@1.0.0.f"]


def test_route_compatible_finds_the_highest_semver_compatible_export() -> None:
    """An import of 1.0.0 is routed to the deployed 1.2.0 (not 2.0.0); an exact match wins."""
    rev = revision(
        3,
        config("a12", "activity", "sha256:a12", "t:a/a@1.2.0.f"),
        config("a11", "activity", "sha256:a11", "t:a/a@1.1.0.f"),
        config("a2", "activity", "sha256:a2", "t:a/a@2.0.0.f"),
    )
    assert rev.route_compatible("t:a/a@1.0.0.f").ffqn == "t:a/a@1.2.0.f"
    assert rev.route_compatible("t:a/a@1.1.0.f").ffqn == "t:a/a@1.1.0.f"
    assert rev.route_compatible("t:a/a@2.0.0.f").component.name == "a2"
    with pytest.raises(NotFoundError):
        rev.route_compatible("t:a/a@3.0.0.f")


def test_a_revisions_routes_are_built_once_and_handed_out_as_copies() -> None:
    """`route` looks up what the revision built when made (a workflow's every call does); `functions()` is a new
    dict each time, so a caller that changes it changes nothing of the revision; equality and repr ignore the table."""
    rev = revision(1, config("act", "activity", "sha256:a1", "t:a/a@1.0.0.f"))
    assert rev.route("t:a/a@1.0.0.f") is rev.route("t:a/a@1.0.0.f")
    functions = rev.functions()
    del functions["t:a/a@1.0.0.f"]
    assert rev.route("t:a/a@1.0.0.f").component.name == "act"
    assert list(rev.functions()) == ["t:a/a@1.0.0.f"]
    same = revision(1, config("act", "activity", "sha256:a1", "t:a/a@1.0.0.f"))
    assert same == rev and "_routes" not in repr(rev)
    with pytest.raises(NotFoundError, match="t:a/a@1.0.0.g is not deployed"):
        rev.route("t:a/a@1.0.0.g")
