"""Components for the runner: fetched by digest, compiled once, kept loaded."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..wasm.cache import ComponentCache
from ..config import env_int
from ..model import ComponentConfig, Revision
from ..errors import NotFoundError
from ..store.deployments import DeploymentStore, RevisionCache
from ..store.records import ExecutionState
from ..wasm.activity_host import ActivityHost
from ..wasm.engine import EngineSettings, EpochTicker
from ..wasm.loader import ComponentLoader, LoadedComponent


def spare_instances() -> int:
    """`DOLMEN_SPARE_INSTANCES`: instances made ahead of time per component and configuration."""
    return env_int("DOLMEN_SPARE_INSTANCES")


class ComponentProvider:
    """Loads the digest an execution is pinned to, from the local cache or Redis.

    `kind` is `activity` or `workflow` (one `ComponentLoader`, and one engine,
    each). Loading raises what `ComponentLoader.load` raises, and
    `DeploymentStore.fetch_blob` for a digest not cached here.
    """

    def __init__(self, data_dir: Path, deployments: DeploymentStore, revisions: RevisionCache) -> None:
        self.cache = ComponentCache(data_dir)
        self.deployments = deployments
        self.revisions = revisions
        self.ticker = EpochTicker()
        fetch = deployments.fetcher(self.cache)
        self._loaders = {
            "activity": ComponentLoader(self.cache, EngineSettings.for_kind("activity"), self.ticker, fetch),
            "workflow": ComponentLoader(self.cache, EngineSettings.for_kind("workflow"), self.ticker, fetch),
        }
        self._activity_hosts: dict[str, ActivityHost] = {}
        # Fresh instances made ahead of time per component (see `wasm.instances`).
        self.spares = spare_instances()
        # Makes spare instances and closes used ones for every component, off the executions' threads.
        self._instances = ThreadPoolExecutor(1, thread_name_prefix="dolmen-instances")
        self._lock = threading.Lock()

    def loader(self, kind: str) -> ComponentLoader:
        """The loader of `kind`'s engine."""
        return self._loaders[kind]

    def load(self, kind: str, digest: str) -> LoadedComponent:
        """The component `digest` compiled for `kind`, fetched from Redis first when it is not cached."""
        return self._loaders[kind].load(digest)

    def activity_host(self, digest: str) -> ActivityHost:
        """The activity host of `digest`, made at first use and kept until `forget` or `close`."""
        with self._lock:
            host = self._activity_hosts.get(digest)
        if host is None:
            loaded = self.load("activity", digest)
            with self._lock:
                host = self._activity_hosts.get(digest)
                if host is None:
                    host = self._activity_hosts[digest] = ActivityHost(loaded, self._instances, spares=self.spares)
        return host

    def config_for(self, state: ExecutionState) -> ComponentConfig:
        """The deployment settings for an execution: its revision's component, else by digest.

        Looks in the execution's revision, then the active one, then every
        revision from the newest; `NotFoundError` when none names its digest.
        """
        revision: Revision | None = None
        if state.revision is not None:
            revision = self.revisions.get(state.revision)
            comp = revision.component(state.component) if state.component else None
            if comp is not None and comp.digest == state.digest:
                return comp
            comp = revision.by_digest(state.digest)
            if comp is not None:
                return comp
        active = self.revisions.active()
        if active is not None:
            comp = active.by_digest(state.digest)
            if comp is not None:
                return comp
        for number in reversed(self.deployments.numbers()):
            comp = self.revisions.get(number).by_digest(state.digest)
            if comp is not None:
                return comp
        raise NotFoundError(f"no deployment revision mentions component {state.digest} of execution {state.id}")

    def forget(self, digests: Iterable[str]) -> None:
        """Drop components that no revision names any more: loaded code, activity instances, local files.

        An execution still running on one finishes on what it holds; a later
        load of the digest loads it again (from Redis, if it is still there).
        """
        gone = frozenset(digests)
        with self._lock:
            hosts = [self._activity_hosts.pop(d) for d in gone if d in self._activity_hosts]
        for host in hosts:
            host.close()
        for loader in self._loaders.values():
            loader.forget(gone)
        for digest in gone:
            self.cache.discard(digest)

    def close(self) -> None:
        """Close the activity hosts and stop the background threads (instances, epochs, output)."""
        with self._lock:
            hosts = list(self._activity_hosts.values())
        for host in hosts:
            host.close()
        self._instances.shutdown(wait=True)
        self.ticker.stop()
        for loader in self._loaders.values():
            loader.pump.close()
