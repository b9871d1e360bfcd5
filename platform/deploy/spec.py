"""Deployment files: YAML in, validated frozen dataclasses out (no I/O besides reading the file).

```yaml
name: shop
retention: 14d                      # default of every component that names none; else 7d (store/retention.py)
components:
  - name: payments                  # unique in the file
    kind: activity                  # activity | workflow | stub | external
    source: oci://127.0.0.1:5000/shop/payments:1.2.0   # or ...@sha256:..., or a path relative to this file
    retry: {max_attempts: 5, initial_backoff: 100ms, max_backoff: 30s, retry_on_err: false}
    timeout: 10s
    memory: 256MiB
    env: {API_URL: "${API_URL}", API_TOKEN: {secret: payments-token}}   # activities only
    instances: fresh                # fresh (default) | reuse (workflows: see README "Workflows")
    max_instance_uses: 1000         # with instances: reuse
    allowed_hosts: [api.example.com, "*.example.org:8443"]   # activities only; default: public hosts only
  - name: checkout
    kind: workflow
    source: ./build/checkout.wasm
    upgrade: verified               # verified (default) | pinned | force; workflows only
    blocking: in-memory             # in-memory (default) | unload; workflows only
    blocking_timeout: 10s
    retention: 30d                  # or {default: 3d, functions: {FFQN: 30d}}; default 7d (store/retention.py)
    history: {max_events: 20000, max_bytes: 16MiB}   # the defaults; workflows only (platform/model.py HistoryLimit)
    limits: {max_running: 2, starts_per_second: 5}   # per function, platform-wide (store/limits.py); not for stubs
routes:
  - {method: POST, path: /checkout/{order-id}, function: shop:checkout/flow@1.0.0.run}
schedules:                          # cron schedules (deploy/schedules.py)
  - {name: nightly, function: shop:checkout/flow@1.0.0.run, cron: "0 2 * * *", timezone: Europe/Paris, params: '["o-1"]'}
```

Every problem names the file, the line and the key, and all of them are
reported at once. `${NAME}` is replaced by the environment variable NAME; an
unset one is an error (`$${` writes a literal `${`). Every value is read from
the text written, quoted or not: `env: {DEBUG: NO, MODE: 0755}` gives the guest
'NO' and '0755' (YAML 1.1 would read false and 493), and a substituted `${NAME}`
is the variable's exact text. An env value `{secret: NAME}` is a secret the
runner resolves for each attempt (see `runner.secrets`): only NAME is stored.
`allowed_hosts` lists where an activity's outgoing HTTP requests may go, as
host patterns (see `wasm.egress`); without it only public hosts are allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import yaml

from ...registry.reference import OciReference
from ..errors import DeploymentError, InvalidNameError
from ..ffqn import Ffqn
from .fields import (
    read_allowed_hosts,
    read_duration,
    read_env,
    read_history,
    read_limits,
    read_retention,
    read_retry,
    read_size,
    swap,
)
from ..model import (
    BlockingStrategy,
    ComponentConfig,
    ComponentKind,
    EnvValue,
    FunctionLimits,
    HistoryLimit,
    InstanceMode,
    RetryPolicy,
    RouteSpec,
    UpgradePolicy,
)
from .schedules import ScheduleEntry, read_schedule, unique
from .yamlnodes import Location, Reader, load_document, raise_problems

_TOP_KEYS = ("name", "retention", "components", "routes", "schedules")
_COMPONENT_KEYS = (
    "name", "kind", "source", "retry", "timeout", "memory", "env", "upgrade", "blocking", "blocking_timeout",
    "instances", "max_instance_uses", "allowed_hosts", "retention", "history", "limits",
)  # fmt: skip
_ROUTE_KEYS = ("method", "path", "function")
_WORKFLOW_ONLY = ("upgrade", "blocking", "blocking_timeout", "history")
KINDS: tuple[ComponentKind, ...] = ("activity", "workflow", "stub", "external")
# What a stub takes besides name, kind and source: it is never run, so no run settings apply.
_STUB_KEYS = ("name", "kind", "source", "retention")
# An external component's functions run in workers outside the platform: the platform keeps their attempts
# (retries, a timeout per attempt), the worker its own memory and environment.
_EXTERNAL_KEYS = ("name", "kind", "source", "retention", "retry", "timeout", "limits")
UPGRADES: tuple[UpgradePolicy, ...] = ("verified", "pinned", "force")
BLOCKING: tuple[BlockingStrategy, ...] = ("in-memory", "unload")
INSTANCES: tuple[InstanceMode, ...] = ("fresh", "reuse")
# More uses than this is a typo (an instance serving a billion runs is never replaced anyway).
MAX_INSTANCE_USES = 1_000_000_000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
_COMPONENT_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")
_PATH_PARAM_RE = re.compile(r"\{([^{}]*)\}")
_PARAM_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a component's bytes come from: an `oci://` reference or a local file."""

    kind: Literal["oci", "file"]
    text: str
    path: Path | None = None
    reference: OciReference | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """One entry of `components:`; `template()` is its config before the bytes are known."""

    name: str
    kind: ComponentKind
    source: Source
    retry: RetryPolicy = RetryPolicy()
    timeout_ms: int | None = 60_000
    memory_limit_bytes: int | None = 512 * 1024 * 1024
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    upgrade: UpgradePolicy = "verified"
    blocking: BlockingStrategy = "in-memory"
    blocking_timeout_ms: int = 10_000
    instances: InstanceMode = "fresh"
    max_instance_uses: int = 1000
    allowed_hosts: tuple[str, ...] | None = None
    retention_ms: int | None = None
    function_retention_ms: Mapping[str, int] = field(default_factory=dict)
    history: HistoryLimit = HistoryLimit()
    limits: FunctionLimits = FunctionLimits()
    location: Location = Location("", 0)
    key_lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def template(self) -> ComponentConfig:
        """The config with no digest or functions yet (`Deployer.prepare` fills them in)."""
        return ComponentConfig(
            name=self.name,
            kind=self.kind,
            digest="",
            source=self.source.text,
            functions={},
            retry=self.retry,
            timeout_ms=self.timeout_ms,
            memory_limit_bytes=self.memory_limit_bytes,
            env=dict(self.env),
            upgrade=self.upgrade,
            blocking=self.blocking,
            blocking_timeout_ms=self.blocking_timeout_ms,
            instances=self.instances,
            max_instance_uses=self.max_instance_uses,
            allowed_hosts=self.allowed_hosts,
            retention_ms=self.retention_ms,
            function_retention_ms=dict(self.function_retention_ms),
            history=self.history,
            limits=self.limits,
        )

    def at(self, key: str) -> Location:
        """A location below this component, for messages about one of its keys."""
        line = self.key_lines.get(key, self.location.line)
        return Location(self.location.file, line, f"{self.location.key}.{key}")


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One entry of `routes:` with the path parameters it names."""

    route: RouteSpec
    params: tuple[str, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A parsed deployment file (the module docstring shows its YAML)."""

    name: str
    file: Path
    components: tuple[ComponentSpec, ...]
    routes: tuple[RouteEntry, ...] = ()
    schedules: tuple[ScheduleEntry, ...] = ()

    def component(self, name: str) -> ComponentSpec | None:
        """The component named `name`, or None."""
        return next((c for c in self.components if c.name == name), None)


def load_spec(path: Path, env: Mapping[str, str] | None = None) -> DeploymentSpec:
    """Read and validate a deployment file (`env` defaults to the process environment).

    Raises `DeploymentError` when the file cannot be read, and as `parse_spec`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeploymentError(f"deployment file '{path}' does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeploymentError(f"cannot read deployment file '{path}': {exc}") from None
    return parse_spec(text, path, os.environ if env is None else env)


def parse_spec(text: str, path: Path, env: Mapping[str, str]) -> DeploymentSpec:
    """Validate deployment YAML; relative sources are resolved against `path`'s folder.

    `env` gives the values of `${NAME}`. Raises one `DeploymentError` listing
    every problem, each with file:line: key and the fix (invalid YAML, an
    empty file, unknown or missing keys, bad values, an unset variable).
    """
    file = str(path)
    root = load_document(text, file)
    if root is None:
        raise DeploymentError(f"{file} is empty; a deployment needs at least `name:` and `components:`")
    reader = Reader(file, env)
    top = reader.mapping(root, reader.root(root), _TOP_KEYS)
    name: str | None = None
    components: list[ComponentSpec] = []
    routes: list[RouteEntry] = []
    schedules: list[ScheduleEntry] = []
    if "name" in top:
        name = reader.string(*swap(top["name"]), pattern=_NAME_RE, hint="use lowercase letters, digits, '.', '_' and '-'")
    elif top or isinstance(root, yaml.MappingNode):
        reader.problem(reader.root(root), "the key 'name' is missing; name the deployment, e.g. `name: shop`")
    if "components" in top:
        where, node = top["components"]
        items = reader.sequence(node, where)
        if isinstance(node, yaml.SequenceNode) and not items:
            reader.problem(where, "the list is empty; a deployment needs at least one component")
        for item_where, item in items:
            spec = _component(reader, item, item_where, path.parent)
            if spec is None:
                continue
            if any(c.name == spec.name for c in components):
                reader.problem(item_where.child("name", item_where.line), f"component name '{spec.name}' is used twice; names must be unique")
                continue
            components.append(spec)
    elif isinstance(root, yaml.MappingNode):
        reader.problem(reader.root(root), "the key 'components' is missing; list the components to deploy")
    if "retention" in top:
        # The deployment's default: each component without a default of its own takes it.
        where, node = top["retention"]
        if isinstance(node, yaml.MappingNode):
            reader.problem(
                where,
                "at the top level, retention takes one duration (retention: 14d), the default of every component; "
                "give per-function retention under the component that exports the function",
            )
        elif (default_ms := read_duration(reader, node, where)) is not None:
            components = [c if c.retention_ms is not None else replace(c, retention_ms=default_ms) for c in components]
    if "routes" in top:
        where, node = top["routes"]
        for item_where, item in reader.sequence(node, where):
            entry = _route(reader, item, item_where)
            if entry is None:
                continue
            if any(r.route.method == entry.route.method and r.route.path == entry.route.path for r in routes):
                reader.problem(item_where, f"route {entry.route.method} {entry.route.path} is declared twice")
                continue
            routes.append(entry)
    if "schedules" in top:
        where, node = top["schedules"]
        for item_where, item in reader.sequence(node, where):
            schedule = read_schedule(reader, item, item_where)
            if schedule is not None and unique(reader, schedules, schedule):
                schedules.append(schedule)
    raise_problems(file, reader.problems)
    if name is None:  # pragma: no cover - a missing name is a problem above
        raise DeploymentError(f"{file}: the deployment has no name")
    return DeploymentSpec(name, path, tuple(components), tuple(routes), tuple(schedules))


def _component(reader: Reader, node: yaml.Node, where: Location, base: Path) -> ComponentSpec | None:
    before = len(reader.problems)
    keys = reader.mapping(node, where, _COMPONENT_KEYS)
    if not keys and not isinstance(node, yaml.MappingNode):
        return None
    for required in ("name", "kind", "source"):
        if required not in keys:
            reader.problem(where, f"the key '{required}' is missing")
    get = {k: swap(v) for k, v in keys.items()}
    name = reader.string(*get["name"], pattern=_COMPONENT_NAME_RE, hint="use lowercase letters, digits and '-', starting with a letter") if "name" in get else None
    kind = reader.choice(*get["kind"], KINDS) if "kind" in get else None
    source = _source(reader, *get["source"], base) if "source" in get else None
    values: dict[str, object] = {}
    if "retry" in get:
        values["retry"] = read_retry(reader, *get["retry"])
    if "timeout" in get:
        values["timeout_ms"] = read_duration(reader, *get["timeout"])
    if "memory" in get:
        values["memory_limit_bytes"] = read_size(reader, *get["memory"])
    if "env" in get:
        values["env"] = read_env(reader, *get["env"])
    if "upgrade" in get:
        values["upgrade"] = reader.choice(*get["upgrade"], UPGRADES)
    if "blocking" in get:
        values["blocking"] = reader.choice(*get["blocking"], BLOCKING)
    if "blocking_timeout" in get:
        values["blocking_timeout_ms"] = read_duration(reader, *get["blocking_timeout"])
    if "instances" in get:
        values["instances"] = reader.choice(*get["instances"], INSTANCES)
    if "max_instance_uses" in get:
        values["max_instance_uses"] = reader.integer(*get["max_instance_uses"], minimum=1, maximum=MAX_INSTANCE_USES)
    if "allowed_hosts" in get and kind != "workflow":
        values["allowed_hosts"] = read_allowed_hosts(reader, *get["allowed_hosts"])
    if "retention" in get and (retention := read_retention(reader, *get["retention"])) is not None:
        values["retention_ms"], values["function_retention_ms"] = retention
    if "history" in get and kind == "workflow" and (history := read_history(reader, *get["history"])) is not None:
        values["history"] = history
    if "limits" in get and kind != "stub" and (limits := read_limits(reader, *get["limits"])) is not None:
        values["limits"] = limits
    if kind == "stub":
        for key in keys:
            if key not in _STUB_KEYS:
                reader.problem(
                    keys[key][0],
                    f"'{key}' does not apply to a stub: its functions are never run, their results are supplied "
                    "from outside (PUT /v1/executions/{id}/result); remove it",
                )
    if kind == "external":
        for key in keys:
            if key not in _EXTERNAL_KEYS:
                reader.problem(
                    keys[key][0],
                    f"'{key}' does not apply to an external component: its functions run in workers outside the "
                    "platform (POST /v1/workers/claim), which take only 'retry', 'timeout' and 'limits'; remove it",
                )
    if kind == "activity":
        for key in _WORKFLOW_ONLY:
            if key in keys:
                reader.problem(keys[key][0], f"'{key}' applies to workflows only; remove it from this activity")
    if kind == "workflow" and "allowed_hosts" in keys:
        reader.problem(
            keys["allowed_hosts"][0],
            "workflows make no HTTP requests (they must replay deterministically); "
            "give 'allowed_hosts' to the activity that makes them and remove it here",
        )
    if "max_instance_uses" in keys and values.get("instances") != "reuse":
        reader.problem(
            keys["max_instance_uses"][0],
            "'max_instance_uses' applies only with 'instances: reuse' (a fresh instance serves one attempt or run); "
            "add 'instances: reuse' or remove it",
        )
    if kind == "workflow" and "env" in keys:
        reader.problem(
            keys["env"][0],
            "workflows get no environment variables (they must replay deterministically); "
            "pass the values as parameters or give them to an activity",
        )
    if len(reader.problems) > before or name is None or kind is None or source is None:
        return None
    return ComponentSpec(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        source=source,
        location=where,
        key_lines={k: loc.line for k, (loc, _) in keys.items()},
        **values,  # type: ignore[arg-type]
    )


def _source(reader: Reader, node: yaml.Node, where: Location, base: Path) -> Source | None:
    text = reader.string(node, where)
    if text is None:
        return None
    if text.startswith("oci://"):
        try:
            return Source("oci", text, reference=OciReference.parse(text))
        except InvalidNameError as exc:
            reader.problem(where, str(exc))
            return None
    if "://" in text:
        reader.problem(where, f"'{text}' is neither an oci:// reference nor a file path; write oci://HOST/REPO:TAG or ./path/to/component.wasm")
        return None
    path = Path(text).expanduser()
    return Source("file", text, path=path if path.is_absolute() else (base / path))


def _route(reader: Reader, node: yaml.Node, where: Location) -> RouteEntry | None:
    before = len(reader.problems)
    keys = reader.mapping(node, where, _ROUTE_KEYS)
    if not keys:
        if isinstance(node, yaml.MappingNode):
            reader.problem(where, "a route needs 'path' and 'function'")
        return None
    get = {k: swap(v) for k, v in keys.items()}
    for required in ("path", "function"):
        if required not in keys:
            reader.problem(where, f"the key '{required}' is missing")
    method = "POST"
    if "method" in get:
        raw = reader.string(*get["method"])
        if raw is not None and raw.upper() not in METHODS:
            reader.problem(keys["method"][0], f"'{raw}' is not one of: {', '.join(METHODS)}")
        method = (raw or "").upper()
    path = reader.string(*get["path"]) if "path" in get else None
    params: list[str] = []
    if path is not None:
        path_where = keys["path"][0]
        if not path.startswith("/"):
            reader.problem(path_where, f"'{path}' must start with '/'")
        for param in _PATH_PARAM_RE.findall(path):
            if not _PARAM_NAME_RE.match(param):
                reader.problem(path_where, f"'{{{param}}}' is not a parameter name; use the WIT parameter's kebab-case name, e.g. {{order-id}}")
            elif param in params:
                reader.problem(path_where, f"'{{{param}}}' appears twice in the path")
            else:
                params.append(param)
        if _PATH_PARAM_RE.sub("", path).count("{") or _PATH_PARAM_RE.sub("", path).count("}"):
            reader.problem(path_where, f"'{path}' has an unbalanced '{{' or '}}'")
    function = reader.string(*get["function"]) if "function" in get else None
    if function is not None:
        try:
            Ffqn.parse(function)
        except InvalidNameError as exc:
            reader.problem(keys["function"][0], str(exc))
    if len(reader.problems) > before or path is None or function is None:
        return None
    return RouteEntry(RouteSpec(method, path, function), tuple(params), where)
