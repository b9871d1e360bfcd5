"""Move running workflows to a new digest: replay each log on the new code, then re-pin or reject.

The driver around `upgrade_decisions.decide`: it lists the unfinished executions of a
changed ffqn, replays each log against the new component in a sandbox that
writes nothing (`workflow.verify`), and records the outcome through
`UpgradeStore.repin`, which refuses if a runner holds the execution or its
log grew meanwhile. Busy executions are retried for a while, then left to
the scheduler as a queued request (`PendingUpgrades`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog

from ..wasm.cache import ComponentCache
from ..errors import DolmenError
from ..store.deployments import DeploymentStore
from ..store.executions import ExecutionStore
from ..store.listing import Cursor
from ..store.clock import now_ms
from ..store.records import UPGRADE_REJECTED, UPGRADED, Event, ExecutionState
from ..store.scripts import Scripts
from ..store.repins import UpgradeStore
from ..wasm.engine import EngineSettings, EpochTicker
from ..wasm.loader import ComponentLoader, LoadedComponent
from ..workflow.sandbox import WorkflowSandbox
from ..workflow.verify import Verdict, verify
from .upgrade_decisions import (
    FunctionChange,
    decide,
    describe_divergence,
    rejected_before,
    rejected_data,
    upgraded_data,
)
from ..store.connection import StoreClient

_BATCH = 200  # executions whose logs are read in one round trip

log = structlog.get_logger("dolmen.upgrade")

Outcome = Literal[
    "upgraded", "rejected", "kept", "busy", "queued", "finished", "moved", "would-upgrade", "would-reject"
]
# How long a queued request is worked on before it is given up (a runner holds an execution that long).
REQUEST_TTL_MS = 30 * 60 * 1000


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What happened (or, in a dry run, would happen) to one execution."""

    execution_id: str
    from_digest: str
    outcome: Outcome
    detail: str = ""
    verdict: Verdict | None = None

    def to_json(self) -> dict[str, Any]:
        """`{"execution_id", "from", "outcome"}`, with `detail` and `verdict` when there are any."""
        data: dict[str, Any] = {"execution_id": self.execution_id, "from": self.from_digest, "outcome": self.outcome}
        if self.detail:
            data["detail"] = self.detail
        if self.verdict is not None:
            data["verdict"] = self.verdict.to_json()
        return data


@dataclass(frozen=True, slots=True)
class UpgradeReport:
    """The outcome for every running execution of one changed ffqn."""

    change: FunctionChange
    executions: tuple[ExecutionReport, ...] = ()
    queued: bool = False

    def count(self, outcome: Outcome) -> int:
        """How many executions had `outcome`."""
        return sum(1 for e in self.executions if e.outcome == outcome)

    def to_json(self) -> dict[str, Any]:
        """The change's fields (`FunctionChange.to_json`), `queued`, and `executions` (each `ExecutionReport.to_json`)."""
        return {**self.change.to_json(), "queued": self.queued, "executions": [e.to_json() for e in self.executions]}


@dataclass
class Upgrader:
    """Verifies and re-pins running workflows; one per process (it keeps compiled components).

    Its calls raise `StoreError` when the store fails, and loading the new
    component what `ComponentLoader.load` raises (`NotFoundError`,
    `ComponentError`, ...); a replay's own failures become verdicts.
    """

    client: StoreClient
    data_dir: Path
    scripts: Scripts | None = None
    executions: ExecutionStore = field(init=False)
    store: UpgradeStore = field(init=False)

    def __post_init__(self) -> None:
        scripts = self.scripts or Scripts(self.client)
        self.executions = ExecutionStore(self.client, scripts)
        self.store = UpgradeStore(self.client, scripts)
        self.deployments = DeploymentStore(self.client)
        self.cache = ComponentCache(self.data_dir)
        self.ticker = EpochTicker()
        self.loader = ComponentLoader(
            self.cache, EngineSettings.for_kind("workflow"), self.ticker, self.deployments.fetcher(self.cache)
        )
        self.sandbox = WorkflowSandbox()

    def close(self) -> None:
        """Stop its epoch thread and free its instances and output pump."""
        self.ticker.stop()
        self.sandbox.close()
        self.loader.pump.close()

    def load(self, digest: str) -> LoadedComponent:
        """A workflow component from the local cache, else from the blobs in Redis."""
        return self.loader.load(digest)

    def candidates(self, change: FunctionChange) -> list[ExecutionState]:
        """Unfinished executions of the changed ffqn on any other digest, oldest first."""
        out: list[ExecutionState] = []
        cursor: Cursor | None = None
        while True:
            batch, cursor = self.executions.list(ffqn=change.ffqn, cursor=cursor, limit=500, active_only=True)
            out += [s for s in batch if s.status != "finished" and s.kind == "workflow" and s.digest != change.to_digest]
            if cursor is None:
                break
        return sorted(out, key=lambda s: s.created_at)

    # ------------------------------------------------------------ driving

    def upgrade(
        self,
        change: FunctionChange,
        *,
        dry_run: bool = False,
        wait_s: float = 5.0,
        queue: bool = True,
        follow_up: bool = True,
    ) -> UpgradeReport:
        """Decide every running execution of `change.ffqn`; retry busy ones for `wait_s`, then queue them.

        With `follow_up` a request is queued even when nothing is busy: executions
        that clients started on the old digest just before the new revision
        reached them are then moved by the scheduler a moment later. A dry run
        writes nothing and reports `would-upgrade`/`would-reject`.
        """
        pending = self.candidates(change)
        if not pending:
            if queue and follow_up and not dry_run and change.policy != "pinned":
                self._queue(change, on_demand=False)
            return UpgradeReport(change, ())
        loaded = None if change.policy == "pinned" else self.load(change.to_digest)
        deadline = time.monotonic() + wait_s
        reports: list[ExecutionReport] = []
        while True:
            busy: list[ExecutionState] = []
            for state, report in self._attempt_all(change, pending, loaded, dry_run=dry_run):
                if report.outcome == "busy":
                    busy.append(state)
                else:
                    reports.append(report)
            if not busy or time.monotonic() >= deadline:
                break
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            pending = busy
        queued = bool(busy) and queue and not dry_run
        for state in busy:
            detail = "a runner holds it; the scheduler retries" if queued else "a runner holds it"
            reports.append(ExecutionReport(state.id, state.digest, "queued" if queued else "busy", detail))
        if queue and not dry_run and change.policy != "pinned" and (busy or follow_up):
            self._queue(change, on_demand=not follow_up)
        return UpgradeReport(change, tuple(reports), queued)

    def _attempt_all(
        self, change: FunctionChange, states: list[ExecutionState], loaded: LoadedComponent | None, *, dry_run: bool
    ) -> Iterator[tuple[ExecutionState, ExecutionReport]]:
        """`attempt` for many executions: logs read in batches, replays on every CPU (wasm runs without the GIL)."""
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="dolmen-verify") as pool:
            for start in range(0, len(states), _BATCH):
                batch = states[start : start + _BATCH]
                logs = self.executions.events_many([s.id for s in batch])
                futures = [
                    pool.submit(self.attempt, change, s.id, loaded, dry_run=dry_run, prefetched=(s, logs[s.id]))
                    for s in batch
                ]
                for state, future in zip(batch, futures):
                    yield state, future.result()

    def attempt(
        self,
        change: FunctionChange,
        execution_id: str,
        loaded: LoadedComponent | None,
        *,
        dry_run: bool = False,
        prefetched: tuple[ExecutionState, list[Event]] | None = None,
    ) -> ExecutionReport:
        """Verify one execution and record the outcome (retrying while its log grows)."""
        for _ in range(5):
            if prefetched is not None:
                state, events = prefetched
                prefetched = None
            else:
                state = self.executions.get(execution_id)
                events = self.executions.events(execution_id) if state is not None else []
            if state is None or state.status == "finished":
                return ExecutionReport(execution_id, state.digest if state else "", "finished")
            if state.digest == change.to_digest:
                return ExecutionReport(execution_id, state.digest, "moved", "already on the new digest")
            if state.status == "running" and state.lock_until > now_ms() and not dry_run:
                return ExecutionReport(execution_id, state.digest, "busy")
            earlier = rejected_before(events, change.to_digest)
            if earlier is not None:
                return ExecutionReport(execution_id, state.digest, "kept", f"rejected earlier: {earlier.data.get('message', '')}")
            verdict: Verdict | None = None
            if change.policy == "verified" and loaded is not None:
                try:
                    verdict = verify(self.sandbox, loaded, state.id, state.ffqn, events)
                except DolmenError as exc:
                    verdict = Verdict(False, len(events), None, None, None, f"replay failed: {exc}")
            decision = decide(change.policy, verdict)
            if decision.action == "keep":
                return ExecutionReport(execution_id, state.digest, "kept", decision.reason)
            if dry_run:
                outcome: Outcome = "would-upgrade" if decision.action == "upgrade" else "would-reject"
                return ExecutionReport(execution_id, state.digest, outcome, decision.reason if decision.action == "upgrade" else describe_divergence(verdict), verdict)
            if decision.action == "upgrade":
                event_type, data = UPGRADED, upgraded_data(change, state.digest, decision)
            else:
                event_type = UPGRADE_REJECTED
                data = rejected_data(change, state.digest, verdict or Verdict(False, len(events), message=decision.reason))
            result = self.store.repin(
                execution_id,
                from_digest=state.digest,
                to_digest=change.to_digest,
                seen_length=len(events),
                event_type=event_type,
                data=data,
                revision=change.to_revision,
                component=change.to_component,
            )
            if result == "ok":
                outcome = "upgraded" if event_type == UPGRADED else "rejected"
                log.info("execution " + outcome, execution_id=execution_id, ffqn=change.ffqn, to=change.to_digest)
                detail = decision.reason if outcome == "upgraded" else describe_divergence(verdict)
                return ExecutionReport(execution_id, state.digest, outcome, detail, verdict)
            if result in ("busy", "finished"):
                return ExecutionReport(execution_id, state.digest, result)  # type: ignore[arg-type]
            if result in ("moved", "missing"):
                return ExecutionReport(execution_id, state.digest, "moved", "moved by another upgrade meanwhile")
            # 'grew': a response arrived while we replayed; verify the longer log.
        return ExecutionReport(execution_id, "", "busy", "its log kept growing while it was verified")

    def _queue(self, change: FunctionChange, on_demand: bool) -> None:
        at = now_ms()
        self.store.add_request(
            {
                "change": change.to_json(),
                "created_at": at,
                "not_before": at + 1000,
                "expires_at": at + REQUEST_TTL_MS,
                "on_demand": on_demand,
            }
        )


class PendingUpgrades:
    """The scheduler's part: finish queued upgrades once runners let go of the executions."""

    def __init__(self, client: StoreClient, data_dir: Path) -> None:
        self.client = client
        self.data_dir = data_dir
        self.store = UpgradeStore(client)
        self.deployments = DeploymentStore(client)
        self._upgrader: Upgrader | None = None

    def work(self) -> int:
        """One pass over the queued requests; returns how many were completed or dropped."""
        done = 0
        for _ in range(self.store.pending()):
            raw = self.store.rotate()
            if raw is None:
                break
            request = _json(raw)
            change = FunctionChange.from_json(request["change"])
            at = now_ms()
            if at < int(request.get("not_before", 0)):
                continue
            if at > int(request.get("expires_at", at + 1)) or self._superseded(change, request):
                self.store.remove(raw)
                done += 1
                continue
            if self._upgrader is None:
                self._upgrader = Upgrader(self.client, self.data_dir)
            try:
                report = self._upgrader.upgrade(change, wait_s=0, queue=False)
            except DolmenError as exc:
                log.error("queued upgrade failed", ffqn=change.ffqn, to=change.to_digest, error=str(exc))
                continue
            if not any(e.outcome == "busy" for e in report.executions):
                self.store.remove(raw)
                done += 1
        if self._upgrader is not None and self.store.pending() == 0:
            # Nothing queued: let go of the components it loaded (the next request loads its own).
            self._upgrader.close()
            self._upgrader = None
        return done

    def _superseded(self, change: FunctionChange, request: dict[str, Any]) -> bool:
        """A later deployment routes the ffqn elsewhere: moving executions to this digest is stale."""
        if request.get("on_demand"):
            return False
        active = self.deployments.active()
        route = active.functions().get(change.ffqn) if active is not None else None
        return route is None or route.component.digest != change.to_digest

    def serve(self, stop: Any, interval_s: float = 1.0) -> None:
        """Work through the queue until `stop` (a threading.Event) is set."""
        while not stop.wait(interval_s):
            try:
                self.work()
            except DolmenError as exc:
                log.error("upgrade queue unavailable", error=str(exc))
        if self._upgrader is not None:
            self._upgrader.close()


def _json(raw: str) -> dict[str, Any]:
    return json.loads(raw)
