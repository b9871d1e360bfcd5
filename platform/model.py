"""Resolved deployments: what runs, with which digest and settings.

A `Revision` is what `platform deploy` stores after resolving a YAML file:
every component pinned to a digest, with its exported function signatures,
so runners and gateways never need the YAML or the registry again.
"""

from __future__ import annotations

from difflib import SequenceMatcher

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .backoff import Backoff
from .cron import Schedule
from .errors import NotFoundError
from .ffqn import Ffqn, InterfaceName, semver_compatible
from .wit.types import FunctionType

# A stub declares functions whose results are supplied from outside (never run; see `store.completions`);
# an external component declares functions run by workers outside the platform, which claim them over HTTP
# (queued and leased like activities, but never read by runners; see `platform.external`).
ComponentKind = Literal["activity", "workflow", "stub", "external"]
UpgradePolicy = Literal["verified", "pinned", "force"]
BlockingStrategy = Literal["in-memory", "unload"]
# An instance per activity attempt or workflow run (default), or reused across them (opt-in).
InstanceMode = Literal["fresh", "reuse"]


# A secret's name: it maps one to one to DOLMEN_SECRET_<NAME> (upper-cased, '-' to '_').
SECRET_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")
SECRET_NAME_HINT = "use lowercase letters, digits and '-', starting with a letter, e.g. payments-token"


@dataclass(frozen=True, slots=True)
class SecretRef:
    """An env value written `{secret: NAME}`: only NAME is stored; runners resolve the value per attempt."""

    name: str

    def to_json(self) -> dict[str, str]:
        """`{"secret": NAME}`, as the deployment writes it."""
        return {"secret": self.name}

    def __str__(self) -> str:
        return f"secret {self.name}"


# A value an activity's environment variable is given: literal text, or a secret to resolve on the runner.
EnvValue = str | SecretRef


def env_to_json(env: Mapping[str, EnvValue]) -> dict[str, Any]:
    """`{NAME: "text"}`, and `{NAME: {"secret": "name"}}` for a secret (its name, never a value)."""
    return {k: v if isinstance(v, str) else v.to_json() for k, v in env.items()}


def env_from_json(data: Mapping[str, Any]) -> dict[str, EnvValue]:
    """The inverse of `env_to_json`: a string stays a literal, `{"secret": NAME}` becomes a `SecretRef`."""
    return {k: v if isinstance(v, str) else SecretRef(str(v["secret"])) for k, v in data.items()}


@dataclass(frozen=True, slots=True)
class HistoryLimit:
    """How large a workflow's event log may grow: events, and bytes of their JSON data.

    Checked whenever the workflow asks for something new; over it, the
    execution fails with `history_limit` (final). A workflow that runs for
    long continues as new before it gets there (see
    `RunContext.continue_as_new`). The defaults sit well below what one
    lock's read of the log can carry; Temporal's limits (51,200 events,
    50 MB) are of the same order.
    """

    max_events: int = 20_000
    max_bytes: int = 16 * 1024 * 1024

    def to_json(self) -> dict[str, int]:
        """`{"max_events": N, "max_bytes": N}`."""
        return {"max_events": self.max_events, "max_bytes": self.max_bytes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryLimit:
        """The inverse of `to_json`; a missing key takes its default."""
        default = cls()
        return cls(int(data.get("max_events", default.max_events)), int(data.get("max_bytes", default.max_bytes)))


@dataclass(frozen=True, slots=True)
class FunctionLimits:
    """How much of each of a component's functions may run, across every runner and worker of the platform.

    `max_running`: at most this many executions of the function hold a lease
    at once (an activity's attempt; a workflow's step, including the wait in
    memory of `blocking: in-memory`, but not a workflow unloaded while it
    waits). `starts_per_second`: leases of the function are taken at least
    1/R s apart, so at most R start in any second (a spacing, as GCRA with no
    burst; see store/limits.py). None: no limit. Each function of the
    component has its own counts.
    """

    max_running: int | None = None
    starts_per_second: float | None = None

    @property
    def any(self) -> bool:
        """Whether either limit is set."""
        return self.max_running is not None or self.starts_per_second is not None

    @property
    def interval_ms(self) -> int:
        """The spacing between starts in ms; 0 without a rate limit."""
        return max(1, round(1000 / self.starts_per_second)) if self.starts_per_second else 0

    def to_json(self) -> dict[str, Any]:
        """`{"max_running": N | null, "starts_per_second": R | null}`."""
        return {"max_running": self.max_running, "starts_per_second": self.starts_per_second}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FunctionLimits:
        """The inverse of `to_json`; a missing key is no limit."""
        rate = data.get("starts_per_second")
        running = data.get("max_running")
        return cls(int(running) if running is not None else None, float(rate) if rate is not None else None)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between attempts; `retry_on_err` also retries `err` results.

    `max_attempts` counts every attempt, the first included; the backoff starts
    at `initial_backoff_ms` and doubles up to `max_backoff_ms`.
    """

    max_attempts: int = 5
    initial_backoff_ms: int = 100
    max_backoff_ms: int = 30_000
    retry_on_err: bool = False

    def backoff_ms(self, failed_attempt: int) -> int:
        """Delay in ms before the attempt after `failed_attempt` (1-based): `initial_backoff_ms` * 2^(n-1), at most
        `max_backoff_ms`; no jitter: it is written to the log."""
        return int(Backoff(self.initial_backoff_ms, self.max_backoff_ms).delay(max(1, failed_attempt)))

    def to_json(self) -> dict[str, Any]:
        """The four fields by name."""
        return {
            "max_attempts": self.max_attempts,
            "initial_backoff_ms": self.initial_backoff_ms,
            "max_backoff_ms": self.max_backoff_ms,
            "retry_on_err": self.retry_on_err,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetryPolicy:
        """The inverse of `to_json`; a missing field takes its default, an unknown one raises TypeError."""
        return cls(**data)


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """One deployed component, resolved to a digest (`sha256:HEX` of its bytes).

    `source` is where it came from (an OCI reference or a file path);
    `functions` maps each exported ffqn to its WIT signature; `imports` lists
    the interfaces it imports. `timeout_ms` bounds an activity's attempt, or
    a workflow's guest time between two waits (epoch interruption);
    `memory_limit_bytes` a guest's linear memory; None is no limit.
    `blocking_timeout_ms` is how long a `blocking: in-memory` workflow waits
    in memory before it unloads.
    """

    name: str
    kind: ComponentKind
    digest: str
    source: str
    functions: dict[str, FunctionType]
    imports: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_ms: int | None = 60_000
    memory_limit_bytes: int | None = 512 * 1024 * 1024
    # Literal values and `SecretRef`s (see `secrets`); only literals are ever stored as values.
    env: dict[str, EnvValue] = field(default_factory=dict)
    upgrade: UpgradePolicy = "verified"
    blocking: BlockingStrategy = "in-memory"
    blocking_timeout_ms: int = 10_000
    instances: InstanceMode = "fresh"
    max_instance_uses: int = 1000
    # Activities: where outgoing HTTP requests may go (host patterns, see `wasm.egress`); None: public hosts only.
    allowed_hosts: tuple[str, ...] | None = None
    # How long a finished tree whose root runs one of these functions is kept, in ms;
    # None: the platform's default (`store.retention.DEFAULT_RETENTION_MS`).
    retention_ms: int | None = None
    # Per-ffqn overrides of `retention_ms`.
    function_retention_ms: dict[str, int] = field(default_factory=dict)
    # Workflows: how large one execution's log may grow.
    history: HistoryLimit = field(default_factory=HistoryLimit)
    # Platform-wide limits of each of its functions (store/limits.py).
    limits: FunctionLimits = field(default_factory=FunctionLimits)

    def retention_for(self, ffqn: str) -> int | None:
        """The retention of executions of `ffqn` in ms; None for the platform's default."""
        return self.function_retention_ms.get(ffqn, self.retention_ms)

    def secrets(self) -> dict[str, SecretRef]:
        """The environment variables whose values are secrets, by variable name."""
        return {k: v for k, v in self.env.items() if isinstance(v, SecretRef)}

    def to_json(self) -> dict[str, Any]:
        """The component as a revision stores it: every field by name, `limits` only when set."""
        return {
            "name": self.name,
            "kind": self.kind,
            "digest": self.digest,
            "source": self.source,
            "functions": {f: t.to_json() for f, t in self.functions.items()},
            "imports": list(self.imports),
            "retry": self.retry.to_json(),
            "timeout_ms": self.timeout_ms,
            "memory_limit_bytes": self.memory_limit_bytes,
            "env": env_to_json(self.env),
            "upgrade": self.upgrade,
            "blocking": self.blocking,
            "blocking_timeout_ms": self.blocking_timeout_ms,
            "instances": self.instances,
            "max_instance_uses": self.max_instance_uses,
            "allowed_hosts": list(self.allowed_hosts) if self.allowed_hosts is not None else None,
            "retention_ms": self.retention_ms,
            "function_retention_ms": dict(self.function_retention_ms),
            "history": self.history.to_json(),
            **({"limits": self.limits.to_json()} if self.limits.any else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComponentConfig:
        """The inverse of `to_json`; fields added in later versions take their defaults (KeyError without `name`, ...)."""
        return cls(
            name=data["name"],
            kind=data["kind"],
            digest=data["digest"],
            source=data["source"],
            functions={f: FunctionType.from_json(t) for f, t in data["functions"].items()},
            imports=tuple(data.get("imports", ())),
            retry=RetryPolicy.from_json(data.get("retry", {})),
            timeout_ms=data.get("timeout_ms"),
            memory_limit_bytes=data.get("memory_limit_bytes"),
            env=env_from_json(data.get("env", {})),
            upgrade=data.get("upgrade", "verified"),
            blocking=data.get("blocking", "in-memory"),
            blocking_timeout_ms=data.get("blocking_timeout_ms", 10_000),
            instances=data.get("instances", "fresh"),
            max_instance_uses=data.get("max_instance_uses", 1000),
            allowed_hosts=tuple(data["allowed_hosts"]) if data.get("allowed_hosts") is not None else None,
            # Revisions stored before retention existed have neither key: the platform's default.
            retention_ms=data.get("retention_ms"),
            function_retention_ms={k: int(v) for k, v in (data.get("function_retention_ms") or {}).items()},
            history=HistoryLimit.from_json(data.get("history") or {}),
            limits=FunctionLimits.from_json(data.get("limits") or {}),
        )


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """An HTTP method and path template bound to a function (an ffqn)."""

    method: str
    path: str
    function: str

    def to_json(self) -> dict[str, Any]:
        """`{"method", "path", "function"}`."""
        return {"method": self.method, "path": self.path, "function": self.function}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RouteSpec:
        """The inverse of `to_json`."""
        return cls(data["method"], data["path"], data["function"])


@dataclass(frozen=True, slots=True)
class FunctionRoute:
    """Where invocations of one ffqn go."""

    ffqn: str
    component: ComponentConfig
    signature: FunctionType

    @property
    def kind(self) -> ComponentKind:
        """Its component's kind."""
        return self.component.kind


@dataclass(frozen=True, slots=True)
class Revision:
    """An applied deployment: `number` counts revisions from 1, `created_at` is ms since the epoch."""

    number: int
    name: str
    created_at: int
    components: tuple[ComponentConfig, ...]
    routes: tuple[RouteSpec, ...] = ()
    source: str = ""
    # Cron schedules: the active revision's are the ones that fire (scheduler.py, cron_firing.py).
    schedules: tuple[Schedule, ...] = ()
    # Every ffqn's route, built once: a workflow's every call looks its callee up here (`route_compatible`).
    _routes: dict[str, FunctionRoute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        routes = {ffqn: FunctionRoute(ffqn, comp, sig) for comp in self.components for ffqn, sig in comp.functions.items()}
        object.__setattr__(self, "_routes", routes)

    def functions(self) -> dict[str, FunctionRoute]:
        """Every deployed ffqn and where it runs (a new dict: the caller may change it)."""
        return dict(self._routes)

    def runnable(self) -> set[str]:
        """The ffqns runners run (and read queues of): every function but those of stubs and external components."""
        return {ffqn for comp in self.components if comp.kind not in ("stub", "external") for ffqn in comp.functions}

    def limits(self) -> dict[str, FunctionLimits]:
        """The limited ffqns (store/limits.py) and their limits."""
        return {ffqn: comp.limits for comp in self.components if comp.limits.any for ffqn in comp.functions}

    def external(self) -> set[str]:
        """The ffqns external workers claim (`platform.external`): those of `kind: external` components."""
        return {ffqn for comp in self.components if comp.kind == "external" for ffqn in comp.functions}

    def route(self, ffqn: str) -> FunctionRoute:
        """The function `ffqn`, or a NotFoundError listing close names."""
        found = self._routes.get(ffqn)
        if found is not None:
            return found
        raise NotFoundError(_unknown_function_message(ffqn, list(self._routes)))

    def route_compatible(self, ffqn: str) -> FunctionRoute:
        """`route(ffqn)`, else the same function in the highest semver-compatible deployed version.

        This is how a workflow that imports `ns:pkg/iface@1.0.0` calls an
        export `ns:pkg/iface@1.2.0`; the route's `ffqn` is the deployed one
        (`compatible_interface`). `NotFoundError`, as `route`, when none is.
        """
        functions = self._routes
        found = functions.get(ffqn)
        if found is not None:
            return found
        try:
            wanted = Ffqn.parse(ffqn)
        except Exception:  # noqa: BLE001 - `route` reports the bad name
            return self.route(ffqn)
        candidates = [f for f in (Ffqn.parse(name) for name in functions) if f.function == wanted.function]
        best = compatible_interface(wanted.interface, (c.interface for c in candidates))
        if best is None:
            return self.route(ffqn)
        return functions[str(Ffqn(best, wanted.function))]

    def component(self, name: str) -> ComponentConfig | None:
        """The component named `name`, or None."""
        for comp in self.components:
            if comp.name == name:
                return comp
        return None

    def by_digest(self, digest: str) -> ComponentConfig | None:
        """The first component whose digest is `digest`, or None."""
        for comp in self.components:
            if comp.digest == digest:
                return comp
        return None

    def to_json(self) -> dict[str, Any]:
        """The revision as the store keeps it (`keys.deployment`); its number under `revision`."""
        return {
            "revision": self.number,
            "name": self.name,
            "created_at": self.created_at,
            "components": [c.to_json() for c in self.components],
            "routes": [r.to_json() for r in self.routes],
            "source": self.source,
            "schedules": [s.to_json() for s in self.schedules],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Revision:
        """The inverse of `to_json`."""
        return cls(
            number=data["revision"],
            name=data["name"],
            created_at=data["created_at"],
            components=tuple(ComponentConfig.from_json(c) for c in data["components"]),
            routes=tuple(RouteSpec.from_json(r) for r in data.get("routes", ())),
            source=data.get("source", ""),
            schedules=tuple(Schedule.from_json(s) for s in data.get("schedules", ())),
        )


def compatible_interface(required: InterfaceName, available: Iterable[InterfaceName]) -> InterfaceName | None:
    """`required` itself if available, else the highest semver-compatible version of it, else None.

    Compatibility is `ffqn.semver_compatible`'s, the rule of wasmtime's linker.
    """
    best: InterfaceName | None = None
    for iface in available:
        if (iface.namespace, iface.package, iface.interface) != (required.namespace, required.package, required.interface):
            continue
        if iface.version == required.version:
            return iface
        if not semver_compatible(iface.version, required.version):
            continue
        if best is None or _version_key(iface.version) > _version_key(best.version):
            best = iface
    return best


def _version_key(version: str | None) -> tuple[int, ...]:
    core = (version or "0.0.0").split("+", 1)[0].split("-", 1)[0]
    try:
        return tuple(int(p) for p in core.split("."))
    except ValueError:
        return (0,)


def similar_functions(ffqn: str, known: Iterable[str], limit: int = 5) -> list[str]:
    """Names in `known` close to `ffqn`, closest first, at most `limit`.

    What "did you mean" offers when invoking an undeployed function, and `GET /v1/executions?ffqn=` hints.
    Closest: the same function name in another version or interface; then a function name that differs
    by a typo (difflib's ratio at least 0.6, as `get_close_matches` takes it) in an interface of the same
    name or of one typo apart (0.8). Other functions of the same interface are not offered: they are what
    `platform functions` lists.
    """
    try:
        wanted = Ffqn.parse(ffqn)
    except Exception:  # noqa: BLE001 - the name itself is reported by the caller's parse
        return []
    scored: list[tuple[float, str]] = []
    for name in set(known):
        try:
            other = Ffqn.parse(name)
        except Exception:  # noqa: BLE001
            continue
        same_interface = other.interface.interface == wanted.interface.interface
        if other.function == wanted.function:
            score = 3.0 if same_interface else 2.0
        elif (typo := _alike(wanted.function, other.function)) >= 0.6 and (
            same_interface or _alike(wanted.interface.interface, other.interface.interface) >= 0.8
        ):
            score = 1.0 + typo
        else:
            continue
        scored.append((-score, name))
    return [name for _, name in sorted(scored)[:limit]]


def _alike(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio()


def _unknown_function_message(ffqn: str, known: list[str]) -> str:
    similar = similar_functions(ffqn, known)
    hint = f"; did you mean {', '.join(similar)}?" if similar else ""
    if not known:
        return f"function {ffqn} is not deployed (nothing is deployed yet; run `platform deploy FILE.yaml`)"
    return f"function {ffqn} is not deployed{hint} (`platform functions` or GET /v1/functions lists what is)"
