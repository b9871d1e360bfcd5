"""Turn resolved component bytes into a stored, active revision."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


from ..wasm.cache import ComponentCache
from ..model import ComponentConfig, ComponentKind, Revision, RouteSpec
from ..cron import Schedule
from ..store.cron_state import CronStates
from ..store.deployments import DeploymentStore
from ..store.clock import now_ms
from ..wasm.engine import EngineSettings
from ..wasm.introspect import ComponentInfo
from ..wasm.loader import ComponentLoader
from ..store.connection import StoreClient


@dataclass(frozen=True, slots=True)
class LoadedSpec:
    """A component whose bytes are in the cache, with its description."""

    config: ComponentConfig
    info: ComponentInfo


def describe_component(cache: ComponentCache, data: bytes, kind: ComponentKind) -> tuple[str, ComponentInfo]:
    """Digest and exports/imports of component bytes (compiled once, then cached); `ComponentError` as
    `ComponentLoader.load_bytes`."""
    # A stub or an external component is only described, never run: any engine reads its types.
    loader = ComponentLoader(cache, EngineSettings.for_kind("workflow" if kind == "workflow" else "activity"))
    loaded = loader.load_bytes(data)
    return loaded.digest, loaded.info


@dataclass
class Deployer:
    """Stores revisions: component blobs go to Redis so every runner can load them."""

    client: StoreClient
    data_dir: Path
    store: DeploymentStore = field(init=False)
    cache: ComponentCache = field(init=False)

    def __post_init__(self) -> None:
        self.store = DeploymentStore(self.client)
        self.cache = ComponentCache(self.data_dir)

    def prepare(self, template: ComponentConfig, data: bytes) -> LoadedSpec:
        """Fill in digest, functions and imports of a component from its bytes (`ComponentError` when they do not load)."""
        digest, info = describe_component(self.cache, data, template.kind)
        functions = {str(f): t for f, t in info.functions().items()}
        imports = tuple(i.name for i in info.imports)
        config = dataclasses.replace(template, digest=digest, functions=functions, imports=imports)
        return LoadedSpec(config, info)

    def apply(
        self,
        name: str,
        components: list[tuple[ComponentConfig, bytes]],
        routes: tuple[RouteSpec, ...] = (),
        *,
        source: str = "",
        activate: bool = True,
        schedules: tuple[Schedule, ...] = (),
    ) -> Revision:
        """Store every component's bytes and a new revision naming them.

        Activated, the schedules it adds or changes count from its creation:
        no tick before it fires (cron.py).
        """
        configs = [config for config, _ in components]
        created = now_ms()
        if activate:
            # Before the revision is active: a scheduler that sees it at once must already find the new start.
            CronStates(self.client).restart(started_schedules(self.store.active(), schedules), created)
        return self.store.put_revision(
            lambda number: Revision(number, name, created, tuple(configs), routes, source, schedules),
            activate=activate,
            blobs=[data for _, data in components],
        )

    def deploy_files(self, name: str, templates: list[tuple[ComponentConfig, Path]], routes: tuple[RouteSpec, ...] = ()) -> Revision:
        """Deploy component files as they are (tests and the demo use this)."""
        prepared = []
        for template, path in templates:
            data = Path(path).read_bytes()
            prepared.append((self.prepare(template, data).config, data))
        return self.apply(name, prepared, routes)


def started_schedules(previous: Revision | None, schedules: tuple[Schedule, ...]) -> list[str]:
    """The names among `schedules` that `previous` did not have with the same expression and time zone."""
    before = {(s.name, s.cron, s.timezone) for s in previous.schedules} if previous is not None else set()
    return [s.name for s in schedules if (s.name, s.cron, s.timezone) not in before]
