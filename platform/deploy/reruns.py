"""`platform fork` and `platform rerun`: new executions made from an existing one.

A fork copies the first N events of a workflow's log into a new root
execution (planned by `workflow.fork`, written by `store.forks`) and lets it
continue, on its own component or another; the copied prefix is replayed on
the chosen component before anything is written, so a fork that could only
fail with a non-determinism error is refused. A rerun starts the same
function with the same params, on the deployed version unless told otherwise.

Randomness: a fork is the source's run continued, so it keeps the source's
seed (its `created` event records it) and draws the same numbers as the copied
prefix did. A rerun is a new run that merely has the same params, like a new
submission: it gets a seed of its own, and a workflow that draws random
numbers may take another path than its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


from ..wasm.cache import ComponentCache
from ..errors import NotFoundError, UsageError
from ..ids import ExecutionId
from ..store import outbox
from ..store.deployments import DeploymentStore
from ..store.executions import ExecutionStore
from ..store.creates import NewExecution
from ..store.forks import write_fork
from ..store.records import ExecutionState
from ..store.retention import root_fields
from ..wasm.engine import EngineSettings
from ..wasm.loader import ComponentLoader
from ..workflow.fork import ForkPlan, plan_fork
from ..workflow.sandbox import WorkflowSandbox
from ..workflow.verify import Verdict, verify
from .components import ChosenComponent, choose_component, find_digest
from ..model import ComponentConfig
from ..store.connection import StoreClient
from ..surface import CLI, Surface


@dataclass(frozen=True, slots=True)
class Forked:
    """A fork that was started."""

    execution_id: str
    source_id: str
    at: int
    digest: str
    copied: int
    left_out: int
    restarted: tuple[str, ...]
    delays: int
    verdict: Verdict | None

    def to_json(self) -> dict[str, Any]:
        """The API's and `--json`'s answer to a fork."""
        return {
            "execution_id": self.execution_id,
            "forked_from": self.source_id,
            "at": self.at,
            "component_digest": self.digest,
            "events_copied": self.copied,
            "events_left_out": self.left_out,
            "children_restarted": list(self.restarted),
            "delays_armed": self.delays,
            "verdict": None if self.verdict is None else self.verdict.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Rerun:
    """A rerun that was started."""

    execution_id: str
    source_id: str
    digest: str
    revision: int | None

    def to_json(self) -> dict[str, Any]:
        """The API's and `--json`'s answer to a rerun."""
        return {"execution_id": self.execution_id, "rerun_of": self.source_id, "component_digest": self.digest, "revision": self.revision}


def current_component(store: DeploymentStore, state: ExecutionState) -> ChosenComponent:
    """The revision and component an execution is pinned to; `NotFoundError` when no revision mentions its digest."""
    if state.revision is not None:
        try:
            revision = store.get(state.revision)
        except NotFoundError:
            revision = None
        if revision is not None:
            comp = revision.component(state.component) if state.component else None
            if comp is None or comp.digest != state.digest:
                comp = revision.by_digest(state.digest)
            if comp is not None:
                return ChosenComponent(comp.digest, revision.number, comp.name, comp)
    found = find_digest(store, state.digest)
    if found is None:
        raise NotFoundError(f"no deployment revision mentions component {state.digest} of execution {state.id}")
    revision, comp = found
    return ChosenComponent(comp.digest, revision.number, comp.name, comp)


def fork_execution(
    client: StoreClient,
    data_dir: Path,
    execution_id: str,
    at: int,
    *,
    component: str | None = None,
    check: bool = True,
    surface: Surface = CLI,
) -> Forked:
    """Start a new root execution from the first `at` events of `execution_id`; errors are worded for `surface`.

    Raises `InvalidNameError` for a malformed id, `NotFoundError` when the
    execution (or its component, or a child's function) is gone, `UsageError`
    when it is not a workflow, `at` is out of range, or (with `check`) the
    copied prefix does not replay on the chosen component; and what
    `choose_component` raises for `component`.
    """
    executions = ExecutionStore(client)
    deployments = DeploymentStore(client)
    state = _require(executions, execution_id, surface)
    if state.kind != "workflow":
        raise UsageError(f"{state.id} is {'an' if state.kind[0] in 'aeiou' else 'a'} {state.kind}, which has no log to fork; use {surface.rerun(state.id)}")
    pinned = current_component(deployments, state)
    chosen = choose_component(client, data_dir, component, ffqn=state.ffqn, like=pinned.config) if component else pinned
    fork_id = ExecutionId.new().value
    plan = plan_fork(executions.events(state.id), state.id, fork_id, at, digest=chosen.digest, surface=surface)
    verdict = _check_prefix(deployments, data_dir, plan, chosen, surface) if check else None
    children = [
        _child(executions, deployments, plan, child_index, state) for child_index in range(len(plan.children))
    ]
    timers = [
        outbox.timer_msg(
            delay.until,
            outbox.delay_member(fork_id, plan.ffqn, delay.id, delay.join_set, state.priority),
        )
        for delay in plan.delays
    ]
    root = NewExecution(
        id=fork_id,
        ffqn=plan.ffqn,
        kind="workflow",
        digest=chosen.digest,
        params=plan.params,
        revision=chosen.revision,
        component=chosen.component,
        seed=plan.seed,
        state_extra=root_fields(chosen.config.retention_for(plan.ffqn)),
        tags=state.tags,
        priority=state.priority,
    )
    write_fork(client, root, list(plan.events), children=children, delivered=list(plan.responses), messages=timers)
    return Forked(
        fork_id, state.id, at, chosen.digest, len(plan.events), plan.left_out, tuple(c.id for c in children), len(timers), verdict
    )


def _require(executions: ExecutionStore, execution_id: str, surface: Surface) -> ExecutionState:
    state = executions.get(ExecutionId.parse(execution_id).value)
    if state is None:
        raise NotFoundError(
            f"execution {execution_id} does not exist, or was removed once its retention passed ({surface.executions_listed})"
        )
    return state


def _check_prefix(
    deployments: DeploymentStore, data_dir: Path, plan: ForkPlan, chosen: ChosenComponent, surface: Surface
) -> Verdict:
    """Replay the copied prefix on the chosen component (writing nothing); refuse a fork that diverges."""
    cache = ComponentCache(data_dir)
    loaded = ComponentLoader(cache, EngineSettings.for_kind("workflow"), fetch=deployments.fetcher(cache)).load(chosen.digest)
    verdict = verify(WorkflowSandbox(), loaded, plan.fork_id, plan.ffqn, plan.as_events(), timeout_ms=chosen.config.timeout_ms)
    if not verdict.ok:
        raise UsageError(
            f"the first {len(plan.events)} copied events of {plan.source_id} do not replay on component "
            f"{chosen.digest}: {verdict.message}; fork at an earlier event"
            + ("" if surface.http else ", or pass --no-check to start it anyway"),
            path="at",
        )
    return verdict


def _child(
    executions: ExecutionStore, deployments: DeploymentStore, plan: ForkPlan, index: int, source: ExecutionState
) -> NewExecution:
    """A child of the prefix that had not answered, started again under the fork like a live run would."""
    child = plan.children[index]
    active = deployments.active()
    kind, digest, revision, component = "", "", None, None
    if active is not None:
        try:
            route = active.route_compatible(child.ffqn)
            kind, digest, revision, component = route.kind, route.component.digest, active.number, route.component.name
        except NotFoundError:
            pass
    if not digest:
        original = executions.get(child.original_id)
        if original is None:
            raise NotFoundError(f"{child.ffqn} is not deployed, so child {child.original_id} cannot be started again for the fork")
        kind, digest, revision, component = original.kind, original.digest, original.revision, original.component
    return NewExecution(
        id=child.id,
        ffqn=child.ffqn,
        kind=kind,  # type: ignore[arg-type]
        digest=digest,
        params=child.params,
        revision=revision,
        component=component,
        parent=plan.fork_id,
        created_extra={"join_set": child.join_set} if child.join_set else {},
        state_extra={"js": child.join_set or "", "parent_ffqn": plan.ffqn},
        tags=source.tags,
        priority=source.priority,
    )


def rerun_execution(
    client: StoreClient, data_dir: Path, execution_id: str, *, component: str | None = None, surface: Surface = CLI
) -> Rerun:
    """Start `execution_id`'s function again with the same params (a new root execution, with a new seed).

    Runs on the deployed version of the function, else the one it ran on, or
    on `component` (see `choose_component`). Raises `InvalidNameError` for a
    malformed id, `NotFoundError` when the execution or its component is gone.
    """
    executions = ExecutionStore(client)
    deployments = DeploymentStore(client)
    state = _require(executions, execution_id, surface)
    chosen: ChosenComponent | None = None
    if component:
        chosen = choose_component(client, data_dir, component, ffqn=state.ffqn, like=current_component(deployments, state).config)
    else:
        active = deployments.active()
        route = active.functions().get(state.ffqn) if active is not None else None
        if active is not None and route is not None:
            chosen = ChosenComponent(route.component.digest, active.number, route.component.name, route.component)
        else:
            chosen = current_component(deployments, state)
    new_id = ExecutionId.new().value
    executions.create(
        NewExecution(
            id=new_id,
            ffqn=state.ffqn,
            kind=_kind(chosen.config),
            digest=chosen.digest,
            params=state.params,
            revision=chosen.revision,
            component=chosen.component,
            created_extra={"rerun_of": state.id},
            state_extra=root_fields(chosen.config.retention_for(state.ffqn)),
            tags=state.tags,
            priority=state.priority,
        )
    )
    return Rerun(new_id, state.id, chosen.digest, chosen.revision)


def _kind(config: ComponentConfig) -> Any:
    return config.kind
