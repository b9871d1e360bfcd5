"""Deployment files: YAML in, validated frozen dataclasses out (no I/O besides reading the file).

```yaml
name: shop
components:
  - name: payments                  # unique in the file
    kind: activity                  # activity | workflow
    source: oci://127.0.0.1:5000/shop/payments:1.2.0   # or ...@sha256:..., or a path relative to this file
    retry: {max_attempts: 5, initial_backoff: 100ms, max_backoff: 30s, retry_on_err: false}
    timeout: 10s
    memory: 256MiB
    env: {API_URL: "${API_URL}", API_TOKEN: {secret: payments-token}}   # activities only
    instances: fresh                # fresh (default) | reuse; activities only
    max_instance_uses: 1000         # with instances: reuse
    allowed_hosts: [api.example.com, "*.example.org:8443"]   # activities only; default: public hosts only
  - name: checkout
    kind: workflow
    source: ./build/checkout.wasm
    upgrade: verified               # verified (default) | pinned | force; workflows only
    blocking: in-memory             # in-memory (default) | unload; workflows only
    blocking_timeout: 10s
    retention: 30d                  # or {default: 3d, functions: {FFQN: 30d}}; default 7d (store/retention.py)
routes:
  - {method: POST, path: /checkout/{order-id}, function: shop:checkout/flow@1.0.0.run}
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from ...registry.reference import OciReference
from ..errors import DeploymentError, InvalidNameError
from ..ffqn import Ffqn
from ..wasm.egress import HostPattern
from .model import (
    SECRET_NAME_HINT, SECRET_NAME_RE, BlockingStrategy, ComponentConfig, ComponentKind, EnvValue, InstanceMode,
    RetryPolicy, RouteSpec, SecretRef, UpgradePolicy,
)  # fmt: skip
from .yamlnodes import Location, Reader, TaggedScalarNode, load_document, raise_problems

_TOP_KEYS = ("name", "components", "routes")
_COMPONENT_KEYS = (
    "name", "kind", "source", "retry", "timeout", "memory", "env", "upgrade", "blocking", "blocking_timeout",
    "instances", "max_instance_uses", "allowed_hosts", "retention",
)  # fmt: skip
_RETENTION_KEYS = ("default", "functions")
_RETRY_KEYS = ("max_attempts", "initial_backoff", "max_backoff", "retry_on_err")
_ROUTE_KEYS = ("method", "path", "function")
_WORKFLOW_ONLY = ("upgrade", "blocking", "blocking_timeout")
_ACTIVITY_ONLY = ("instances", "max_instance_uses", "allowed_hosts")
KINDS: tuple[ComponentKind, ...] = ("activity", "workflow")
UPGRADES: tuple[UpgradePolicy, ...] = ("verified", "pinned", "force")
BLOCKING: tuple[BlockingStrategy, ...] = ("in-memory", "unload")
INSTANCES: tuple[InstanceMode, ...] = ("fresh", "reuse")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
_COMPONENT_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_NUMBER_RE = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_PATH_PARAM_RE = re.compile(r"\{([^{}]*)\}")
_PARAM_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNIT_BYTES = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


def parse_duration(text: object) -> int:
    """Milliseconds of `250ms`, `10s`, `1.5s`, `5m`, `1h` or `7d`; ValueError naming the fix otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as 250ms, 10s, 5m or 1h, got {text!r}")
    match = _DURATION_RE.match(text)
    if match is None:
        if _NUMBER_RE.match(text):
            number = text.strip()
            raise ValueError(f"{number} has no unit; write e.g. {number}ms or {number}s")
        raise ValueError(f"'{text}' is not a duration; write e.g. 250ms, 10s, 5m or 1h")
    ms = float(match.group(1)) * _UNIT_MS[match.group(2)]
    if ms != int(ms):
        raise ValueError(f"'{text}' is not a whole number of milliseconds")
    return int(ms)


def parse_size(text: object) -> int:
    """Bytes of `256MiB`, `1GiB`, `500MB` or a plain number of bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str) or (match := _SIZE_RE.match(text)) is None:
        raise ValueError(f"expected a size such as 256MiB, 1GiB or 500MB, got {text!r}")
    return int(match.group(1)) * _UNIT_BYTES[match.group(2) or "B"]


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
    """A parsed deployment file."""

    name: str
    file: Path
    components: tuple[ComponentSpec, ...]
    routes: tuple[RouteEntry, ...] = ()

    def component(self, name: str) -> ComponentSpec | None:
        return next((c for c in self.components if c.name == name), None)


def load_spec(path: Path, env: Mapping[str, str] | None = None) -> DeploymentSpec:
    """Read and validate a deployment file (`env` defaults to the process environment)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeploymentError(f"deployment file '{path}' does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeploymentError(f"cannot read deployment file '{path}': {exc}") from None
    return parse_spec(text, path, os.environ if env is None else env)


def parse_spec(text: str, path: Path, env: Mapping[str, str]) -> DeploymentSpec:
    """Validate deployment YAML; relative sources are resolved against `path`'s folder."""
    file = str(path)
    root = load_document(text, file)
    if root is None:
        raise DeploymentError(f"{file} is empty; a deployment needs at least `name:` and `components:`")
    reader = Reader(file, env)
    top = reader.mapping(root, reader.root(root), _TOP_KEYS)
    name: str | None = None
    components: list[ComponentSpec] = []
    routes: list[RouteEntry] = []
    if "name" in top:
        name = reader.string(*_swap(top["name"]), pattern=_NAME_RE, hint="use lowercase letters, digits, '.', '_' and '-'")
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
    raise_problems(file, reader.problems)
    if name is None:  # pragma: no cover - a missing name is a problem above
        raise DeploymentError(f"{file}: the deployment has no name")
    return DeploymentSpec(name, path, tuple(components), tuple(routes))


def _swap(pair: tuple[Location, yaml.Node]) -> tuple[yaml.Node, Location]:
    return pair[1], pair[0]


def _component(reader: Reader, node: yaml.Node, where: Location, base: Path) -> ComponentSpec | None:
    before = len(reader.problems)
    keys = reader.mapping(node, where, _COMPONENT_KEYS)
    if not keys and not isinstance(node, yaml.MappingNode):
        return None
    for required in ("name", "kind", "source"):
        if required not in keys:
            reader.problem(where, f"the key '{required}' is missing")
    get = {k: _swap(v) for k, v in keys.items()}
    name = reader.string(*get["name"], pattern=_COMPONENT_NAME_RE, hint="use lowercase letters, digits and '-', starting with a letter") if "name" in get else None
    kind = reader.choice(*get["kind"], KINDS) if "kind" in get else None
    source = _source(reader, *get["source"], base) if "source" in get else None
    values: dict[str, object] = {}
    if "retry" in get:
        values["retry"] = _retry(reader, *get["retry"])
    if "timeout" in get:
        values["timeout_ms"] = _duration(reader, *get["timeout"])
    if "memory" in get:
        values["memory_limit_bytes"] = _size(reader, *get["memory"])
    if "env" in get:
        values["env"] = _env(reader, *get["env"])
    if "upgrade" in get:
        values["upgrade"] = reader.choice(*get["upgrade"], UPGRADES)
    if "blocking" in get:
        values["blocking"] = reader.choice(*get["blocking"], BLOCKING)
    if "blocking_timeout" in get:
        values["blocking_timeout_ms"] = _duration(reader, *get["blocking_timeout"])
    if "instances" in get:
        values["instances"] = reader.choice(*get["instances"], INSTANCES)
    if "max_instance_uses" in get:
        values["max_instance_uses"] = reader.integer(*get["max_instance_uses"], minimum=1)
    if "allowed_hosts" in get and kind != "workflow":
        values["allowed_hosts"] = _allowed_hosts(reader, *get["allowed_hosts"])
    if "retention" in get and (retention := _retention(reader, *get["retention"])) is not None:
        values["retention_ms"], values["function_retention_ms"] = retention
    if kind == "activity":
        for key in _WORKFLOW_ONLY:
            if key in keys:
                reader.problem(keys[key][0], f"'{key}' applies to workflows only; remove it from this activity")
    if kind == "workflow":
        for key in _ACTIVITY_ONLY:
            if key == "allowed_hosts" and key in keys:
                reader.problem(
                    keys[key][0],
                    "workflows make no HTTP requests (they must replay deterministically); "
                    "give 'allowed_hosts' to the activity that makes them and remove it here",
                )
            elif key in keys:
                reader.problem(
                    keys[key][0],
                    f"'{key}' applies to activities only: a workflow gets a fresh instance for every run "
                    "so that it replays deterministically; remove it",
                )
    if kind == "activity" and "max_instance_uses" in keys and values.get("instances") != "reuse":
        reader.problem(
            keys["max_instance_uses"][0],
            "'max_instance_uses' applies only with 'instances: reuse' (a fresh instance serves one attempt); "
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


def _retry(reader: Reader, node: yaml.Node, where: Location) -> RetryPolicy | None:
    keys = reader.mapping(node, where, _RETRY_KEYS)
    get = {k: _swap(v) for k, v in keys.items()}
    default = RetryPolicy()
    attempts = reader.integer(*get["max_attempts"], minimum=1) if "max_attempts" in get else default.max_attempts
    initial = _duration(reader, *get["initial_backoff"]) if "initial_backoff" in get else default.initial_backoff_ms
    maximum = _duration(reader, *get["max_backoff"]) if "max_backoff" in get else default.max_backoff_ms
    on_err = reader.boolean(*get["retry_on_err"]) if "retry_on_err" in get else default.retry_on_err
    if attempts is None or initial is None or maximum is None or on_err is None:
        return None
    if maximum < initial:
        reader.problem(keys.get("max_backoff", (where, node))[0], f"max_backoff ({maximum}ms) is shorter than initial_backoff ({initial}ms)")
        return None
    return RetryPolicy(attempts, initial, maximum, on_err)


def _retention(reader: Reader, node: yaml.Node, where: Location) -> tuple[int | None, dict[str, int]] | None:
    """`retention: 3d`, or `{default: 3d, functions: {FFQN: 1h}}`: how long finished trees are kept.

    Whether each named function is exported by the component is checked once
    the component is described (`deploy.service`).
    """
    if not isinstance(node, yaml.MappingNode):
        ms = _duration(reader, node, where)
        return None if ms is None else (ms, {})
    keys = reader.mapping(node, where, _RETENTION_KEYS)
    if not node.value:
        reader.problem(where, "write a duration (retention: 7d) or {default: 7d, functions: {FFQN: 1h}}")
    if not keys:
        return None
    ok = True
    default: int | None = None
    if "default" in keys:
        default = _duration(reader, keys["default"][1], keys["default"][0])
        ok = default is not None
    functions: dict[str, int] = {}
    if "functions" in keys:
        fwhere, fnode = keys["functions"]
        if not isinstance(fnode, yaml.MappingNode) or not fnode.value:
            reader.problem(fwhere, 'expected a mapping of FFQN: duration, e.g. functions: {"shop:orders/api@1.0.0.place": 30d}')
            return None
        for key_node, value_node in fnode.value:
            line = key_node.start_mark.line + 1
            name = reader.text(key_node, Location(fwhere.file, line, fwhere.key))
            if name is None:
                ok = False
                continue
            here = fwhere.child(name, line)
            try:
                Ffqn.parse(name)
            except InvalidNameError as exc:
                reader.problem(here, str(exc))
                ok = False
                continue
            if name in functions:
                reader.problem(here, f"'{name}' appears twice; keep one")
                ok = False
                continue
            ms = _duration(reader, value_node, here)
            if ms is None:
                ok = False
                continue
            functions[name] = ms
    return (default, functions) if ok else None


def _duration(reader: Reader, node: yaml.Node, where: Location) -> int | None:
    value = reader.text(node, where)
    if value is None:
        return None
    try:
        ms = parse_duration(value)
    except ValueError as exc:
        reader.problem(where, str(exc))
        return None
    if ms <= 0:
        reader.problem(where, "must be longer than 0ms")
        return None
    return ms


def _size(reader: Reader, node: yaml.Node, where: Location) -> int | None:
    value = reader.text(node, where)
    if value is None:
        return None
    try:
        size = parse_size(value)
    except ValueError as exc:
        reader.problem(where, str(exc))
        return None
    if size < 1024 * 1024:
        reader.problem(where, f"{size} bytes is too little memory for a component; give at least 1MiB")
        return None
    return size


def _env(reader: Reader, node: yaml.Node, where: Location) -> dict[str, EnvValue] | None:
    """NAME: value pairs, each value exactly as written (`NO` stays 'NO', `0755` stays '0755') or `{secret: NAME}`."""
    if not isinstance(node, yaml.MappingNode):
        reader.problem(where, "expected a mapping of NAME: value")
        return None
    out: dict[str, EnvValue] = {}
    ok = True
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = reader.text(key_node, Location(where.file, line, where.key))
        if key is None:
            ok = False
            continue
        here = where.child(key, line)
        if not _ENV_NAME_RE.match(key):
            reader.problem(here, f"'{key}' is not a valid environment variable name; use letters, digits and '_', not starting with a digit")
            ok = False
            continue
        if key in out:
            reader.problem(here, f"'{key}' appears twice; keep one")
            ok = False
            continue
        value = _env_value(reader, value_node, here)
        if value is None:
            ok = False
            continue
        out[key] = value
    return out if ok else None


def _env_value(reader: Reader, node: yaml.Node, where: Location) -> EnvValue | None:
    variable = where.key.rpartition(".")[2]
    if isinstance(node, yaml.MappingNode):
        return _secret_ref(reader, node, where, variable)
    if isinstance(node, yaml.SequenceNode):
        reader.problem(where, f"expected one value or a secret reference, got a list; write e.g. {variable}: text or {variable}: {{secret: NAME}}")
        return None
    if isinstance(node, TaggedScalarNode) and node.tag == "!secret":
        example = node.value if SECRET_NAME_RE.match(node.value) else "NAME"
        reader.problem(where, f"the tag !secret does not apply here; a secret is written {variable}: {{secret: {example}}}")
        return None
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.value == "":
        # `NAME:` with nothing after it is more likely a forgotten value than a wish for "".
        reader.problem(where, 'has no value; write one, or quote an empty string as ""')
        return None
    return reader.text(node, where)


def _secret_ref(reader: Reader, node: yaml.MappingNode, where: Location, variable: str) -> SecretRef | None:
    """`{secret: NAME}`: the runner resolves NAME for each attempt; only the name is stored."""
    keys = reader.mapping(node, where, ("secret",))
    if "secret" not in keys:
        reader.problem(where, f"a mapping here is a secret reference; write {variable}: {{secret: NAME}}")
        return None
    name_where, name_node = keys["secret"]
    if isinstance(name_node, yaml.ScalarNode) and name_node.style is None and name_node.value == "":
        reader.problem(name_where, f"names no secret; write {variable}: {{secret: NAME}}, e.g. {{secret: payments-token}}")
        return None
    name = reader.string(name_node, name_where, pattern=SECRET_NAME_RE, hint=SECRET_NAME_HINT)
    return SecretRef(name) if name is not None else None


def _allowed_hosts(reader: Reader, node: yaml.Node, where: Location) -> tuple[str, ...] | None:
    """Host patterns (`api.example.com`, `*.example.org:8443`, `localhost:*`), each checked and kept in canonical form."""
    if not isinstance(node, yaml.SequenceNode):
        reader.problem(where, 'expected a list of host patterns, e.g. allowed_hosts: ["api.example.com", "*.example.org:8443"]')
        return None
    out: list[str] = []
    ok = True
    for item_where, item in reader.sequence(node, where):
        text = reader.text(item, item_where)
        if text is None:
            ok = False
            continue
        try:
            pattern = str(HostPattern.parse(text))
        except ValueError as exc:
            reader.problem(item_where, str(exc))
            ok = False
            continue
        if pattern in out:
            reader.problem(item_where, f"'{text}' is listed twice; keep one")
            ok = False
            continue
        out.append(pattern)
    return tuple(out) if ok else None


def _route(reader: Reader, node: yaml.Node, where: Location) -> RouteEntry | None:
    before = len(reader.problems)
    keys = reader.mapping(node, where, _ROUTE_KEYS)
    if not keys:
        if isinstance(node, yaml.MappingNode):
            reader.problem(where, "a route needs 'path' and 'function'")
        return None
    get = {k: _swap(v) for k, v in keys.items()}
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
