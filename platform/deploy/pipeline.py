"""`platform deploy`: resolve, describe, check, store a revision, then upgrade running workflows.

1. every source is resolved to bytes and a digest: `oci://` references are
   pulled and verified (registry/pull.py), local paths are read;
2. each component is compiled and described (`Deployer.prepare`);
3. the pure checks (`checks.py`) must find nothing wrong;
4. the revision is stored atomically and becomes active (old ones are kept);
5. every workflow ffqn whose digest changed gets its running executions
   replay-checked and re-pinned or rejected (`upgrade_checks.py`).

Nothing is written before step 4, so a bad deployment leaves the active
revision as it was. A dry run stops after step 3 and reports, for every
running execution, what step 5 would do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path


from ...registry.auth import Credentials
from ..wasm.cache import ComponentCache
from ...registry.pull import fetch_component
from ..errors import ComponentError, DeploymentError, DolmenError, RegistryError
from ..store.deployments import DeploymentStore
from ..wasm.introspect import ComponentInfo
from .apply import Deployer, started_schedules
from ..store.clock import now_ms
from .components import ADHOC_PREFIX
from ..cron import Schedule
from ..store.cron_state import CronStates
from .schedules import check_schedules
from .checks import Described, check_deployment
from ..model import ComponentConfig, Revision
from .spec import ComponentSpec, DeploymentSpec
from .upgrade_decisions import FunctionChange, changed_workflows
from .upgrade_checks import Upgrader, UpgradeReport
from .yamlnodes import Problem, raise_problems
from ..store.connection import StoreClient


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to reach registries named by `oci://` sources."""

    insecure: bool = False
    credentials: Credentials | None = None


@dataclass(frozen=True, slots=True)
class PreparedComponent:
    """A component of the file, resolved and described, ready to store."""

    spec: ComponentSpec
    config: ComponentConfig
    info: ComponentInfo
    data: bytes

    def described(self) -> Described:
        """What the pure checks (`checks.check_deployment`) need of it."""
        return Described(
            name=self.config.name,
            kind=self.config.kind,
            exports=self.config.functions,
            imports=self.info.imports,
            location=self.spec.location,
            world_imports=self.info.world_imports,
        )


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """A checked deployment, not stored yet."""

    spec: DeploymentSpec
    components: tuple[PreparedComponent, ...]
    previous: Revision | None
    # The file's schedules, their params checked and made canonical.
    schedules: tuple[Schedule, ...] = ()

    def configs(self) -> tuple[ComponentConfig, ...]:
        """The resolved configs of its components, in file order."""
        return tuple(c.config for c in self.components)

    def changes(self, revision: int | None = None) -> list[FunctionChange]:
        """Workflow ffqns whose digest differs from the active revision's."""
        return changed_workflows(self.previous, self.configs(), revision)


@dataclass(frozen=True, slots=True)
class DeployResult:
    """What `deploy` did: the stored revision (None for a dry run) and the upgrade reports."""

    plan: DeployPlan
    revision: Revision | None
    upgrades: tuple[UpgradeReport, ...]


def resolve_source(spec: ComponentSpec, cache: ComponentCache, registry: RegistryOptions) -> tuple[bytes, str]:
    """The component's bytes and the source to record (a digest-pinned reference or an absolute path).

    Raises `ComponentError` when a file cannot be read, and what
    `registry.pull.fetch_component` raises for an `oci://` source (registry
    errors, `IntegrityError`).
    """
    source = spec.source
    if source.kind == "file":
        path = source.path or Path(source.text)
        try:
            return path.read_bytes(), str(path.resolve())
        except FileNotFoundError:
            raise ComponentError(
                f"component file '{source.text}' does not exist (looked at {path}); build it first, e.g. "
                f"`platform build SRC -w WORLD -o {source.text}`, or fix the path (it is relative to the deployment file)"
            ) from None
        except OSError as exc:
            raise ComponentError(f"cannot read component file '{path}': {exc.strerror or exc}") from None
    fetched = fetch_component(source.text, cache, credentials=registry.credentials, insecure=registry.insecure)
    return cache.get(fetched.component_digest), str(fetched.reference)


def plan_deployment(spec: DeploymentSpec, deployer: Deployer, registry: RegistryOptions | None = None) -> DeployPlan:
    """Resolve, describe and check every component; raises `DeploymentError` listing every problem."""
    registry = registry or RegistryOptions()
    problems: list[Problem] = []
    prepared: list[PreparedComponent] = []
    for comp in spec.components:
        try:
            data, source = resolve_source(comp, deployer.cache, registry)
        except DolmenError as exc:
            problems.append(Problem(comp.at("source"), f"component '{comp.name}': {_cannot_resolve(exc)}"))
            continue
        try:
            loaded = deployer.prepare(comp.template(), data)
        except DolmenError as exc:
            problems.append(Problem(comp.at("source"), f"component '{comp.name}' ({comp.source}) cannot be loaded: {exc}"))
            continue
        config = dataclasses.replace(loaded.config, source=source)
        prepared.append(PreparedComponent(comp, config, loaded.info, data))
    raise_problems(str(spec.file), problems)
    problems = check_deployment([p.described() for p in prepared], spec.routes) + _retention_problems(prepared)
    functions = {ffqn: fty for p in prepared for ffqn, fty in p.config.functions.items()}
    schedule_problems, schedules = check_schedules(spec.schedules, functions)
    raise_problems(str(spec.file), problems + schedule_problems)
    return DeployPlan(spec, tuple(prepared), deployer.store.active(), schedules)


def _retention_problems(prepared: list[PreparedComponent]) -> list[Problem]:
    """A per-function retention must name a function its component exports."""
    problems: list[Problem] = []
    for comp in prepared:
        for ffqn in comp.config.function_retention_ms:
            if ffqn not in comp.config.functions:
                exported = ", ".join(sorted(comp.config.functions)) or "nothing"
                problems.append(
                    Problem(
                        comp.spec.at("retention"),
                        f"component '{comp.config.name}' does not export {ffqn}; name one of its functions ({exported})",
                    )
                )
    return problems


def _cannot_resolve(exc: DolmenError) -> str:
    if isinstance(exc, RegistryError):
        return f"cannot resolve the reference: {exc}"
    return str(exc)


def deploy(
    spec: DeploymentSpec,
    client: StoreClient,
    data_dir: Path,
    *,
    dry_run: bool = False,
    registry: RegistryOptions | None = None,
    upgrade_wait_s: float = 5.0,
) -> DeployResult:
    """Check `spec`, store it as the active revision and upgrade running workflows (or only report, for a dry run).

    Raises `DeploymentError` (every problem at once) before anything is
    written, and what storing raises (`StoreError`, `StoreFullError`: no
    revision stored). `upgrade_wait_s` is how long each upgrade waits for
    runners to let go of executions before it queues the rest for the scheduler.
    """
    deployer = Deployer(client, data_dir)
    plan = plan_deployment(spec, deployer, registry)
    revision: Revision | None = None
    if not dry_run:
        revision = deployer.apply(
            spec.name,
            [(c.config, c.data) for c in plan.components],
            tuple(r.route for r in spec.routes),
            source=str(spec.file.resolve()),
            schedules=plan.schedules,
        )
    changes = plan.changes(revision.number if revision is not None else None)
    reports: list[UpgradeReport] = []
    if changes:
        upgrader = Upgrader(client, data_dir)
        try:
            for change in changes:
                reports.append(upgrader.upgrade(change, dry_run=dry_run, wait_s=upgrade_wait_s))
        finally:
            upgrader.close()
    return DeployResult(plan, revision, tuple(reports))


def rollback(client: StoreClient, number: int) -> tuple[Revision, Revision | None]:
    """Make revision `number` active again; returns it and the one it replaced.

    Running executions stay on their digests; `platform upgrade` moves them.
    Raises `NotFoundError` when there is no such revision, and
    `DeploymentError` when it was made for one execution (fork, rerun).
    """
    store = DeploymentStore(client)
    previous = store.active()
    target = store.get(number)
    if target.name.startswith(ADHOC_PREFIX):
        raise DeploymentError(
            f"revision {number} was made by `platform fork`/`rerun --component` for one execution, "
            "not by a deployment; roll back to a revision made by `platform deploy`"
        )
    CronStates(client).restart(started_schedules(previous, target.schedules), now_ms())
    return store.activate(number), previous
