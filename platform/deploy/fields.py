"""Readers of one deployment field each: durations, sizes, retry, retention, history, limits, env and allowed_hosts.

Each `read_*` takes the YAML node of its field and its location, reports
every problem to the `Reader` (file, line, key and the fix), and returns the
value or None; `spec` assembles them into a component.
"""

from __future__ import annotations

import re

import yaml

from ..errors import InvalidNameError
from ..ffqn import Ffqn
from ..wasm.egress import HostPattern
from ..model import SECRET_NAME_HINT, SECRET_NAME_RE, EnvValue, FunctionLimits, HistoryLimit, RetryPolicy, SecretRef
from .yamlnodes import Location, Reader, TaggedScalarNode

_RETENTION_KEYS = ("default", "functions")
_HISTORY_KEYS = ("max_events", "max_bytes")
_LIMIT_KEYS = ("max_running", "starts_per_second")
# More than this is a typo: no platform runs a million attempts of one function at once or starts them per second.
MAX_LIMIT = 1_000_000
_RETRY_KEYS = ("max_attempts", "initial_backoff", "max_backoff", "retry_on_err")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_NUMBER_RE = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNIT_BYTES = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


def parse_duration(text: object) -> int:
    """Milliseconds of `250ms`, `10s`, `1.5s`, `5m`, `1h` or `7d`; ValueError naming the fix otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as 250ms, 10s, 5m, 1h or 7d, got {text!r}")
    match = _DURATION_RE.match(text)
    if match is None:
        if _NUMBER_RE.match(text):
            number = text.strip()
            if float(number) == 0:
                raise ValueError(f"{number} is no duration: write a positive one such as 250ms, 10s, 5m, 1h or 7d")
            raise ValueError(f"{number} has no unit; write e.g. {number}ms, {number}s or {number}d")
        positive = text.strip()[1:].strip()
        if text.strip().startswith("-") and _DURATION_RE.match(positive):
            raise ValueError(f"'{text}' is negative; a duration is positive, e.g. {positive}")
        raise ValueError(f"'{text}' is not a duration; write e.g. 250ms, 10s, 5m, 1h or 7d")
    ms = float(match.group(1)) * _UNIT_MS[match.group(2)]
    if ms != int(ms):
        raise ValueError(f"'{text}' is not a whole number of milliseconds")
    return int(ms)


def parse_size(text: object) -> int:
    """Bytes of `256MiB`, `1GiB`, `500MB` (KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000) or a plain number of
    bytes; ValueError naming the fix otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    if not isinstance(text, str) or (match := _SIZE_RE.match(text)) is None:
        raise ValueError(f"expected a size such as 256MiB, 1GiB or 500MB, got {text!r}")
    return int(match.group(1)) * _UNIT_BYTES[match.group(2) or "B"]


def swap(pair: tuple[Location, yaml.Node]) -> tuple[yaml.Node, Location]:
    """A mapping entry `(location, node)` of `Reader.mapping` as the `(node, location)` the readers take."""
    return pair[1], pair[0]


def read_retry(reader: Reader, node: yaml.Node, where: Location) -> RetryPolicy | None:
    """`retry: {max_attempts, initial_backoff, max_backoff, retry_on_err}` (durations as `read_duration`); a key left
    out takes `RetryPolicy`'s default."""
    keys = reader.mapping(node, where, _RETRY_KEYS)
    get = {k: swap(v) for k, v in keys.items()}
    default = RetryPolicy()
    attempts = reader.integer(*get["max_attempts"], minimum=1) if "max_attempts" in get else default.max_attempts
    initial = read_duration(reader, *get["initial_backoff"]) if "initial_backoff" in get else default.initial_backoff_ms
    maximum = read_duration(reader, *get["max_backoff"]) if "max_backoff" in get else default.max_backoff_ms
    on_err = reader.boolean(*get["retry_on_err"]) if "retry_on_err" in get else default.retry_on_err
    if attempts is None or initial is None or maximum is None or on_err is None:
        return None
    if maximum < initial:
        reader.problem(keys.get("max_backoff", (where, node))[0], f"max_backoff ({maximum}ms) is shorter than initial_backoff ({initial}ms)")
        return None
    return RetryPolicy(attempts, initial, maximum, on_err)


def read_retention(reader: Reader, node: yaml.Node, where: Location) -> tuple[int | None, dict[str, int]] | None:
    """`retention: 3d`, or `{default: 3d, functions: {FFQN: 1h}}`: how long finished trees are kept.

    Whether each named function is exported by the component is checked once
    the component is described (`deploy.pipeline`).
    """
    if not isinstance(node, yaml.MappingNode):
        ms = read_duration(reader, node, where)
        return None if ms is None else (ms, {})
    keys = reader.mapping(node, where, _RETENTION_KEYS)
    if not node.value:
        reader.problem(where, "write a duration (retention: 7d) or {default: 7d, functions: {FFQN: 1h}}")
    if not keys:
        return None
    ok = True
    default: int | None = None
    if "default" in keys:
        default = read_duration(reader, keys["default"][1], keys["default"][0])
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
            ms = read_duration(reader, value_node, here)
            if ms is None:
                ok = False
                continue
            functions[name] = ms
    return (default, functions) if ok else None


def read_history(reader: Reader, node: yaml.Node, where: Location) -> HistoryLimit | None:
    """`history: {max_events: 20000, max_bytes: 16MiB}`: how large one workflow execution's log may grow."""
    keys = reader.mapping(node, where, _HISTORY_KEYS)
    if isinstance(node, yaml.MappingNode) and not node.value:
        reader.problem(where, "write {max_events: 20000, max_bytes: 16MiB}, or leave 'history' out for these defaults")
    get = {k: swap(v) for k, v in keys.items()}
    default = HistoryLimit()
    events = reader.integer(*get["max_events"], minimum=10) if "max_events" in get else default.max_events
    size: int | None = default.max_bytes
    if "max_bytes" in get:
        bytes_node, bytes_where = get["max_bytes"]
        text = reader.text(bytes_node, bytes_where)
        try:
            size = None if text is None else parse_size(text)
        except ValueError as exc:
            reader.problem(bytes_where, str(exc))
            size = None
        if size is not None and size < 4096:
            reader.problem(bytes_where, f"{size} bytes would not hold a workflow's first events; give at least 4KiB")
            size = None
    if events is None or size is None or not keys:
        return None
    return HistoryLimit(events, size)


def read_limits(reader: Reader, node: yaml.Node, where: Location) -> FunctionLimits | None:
    """`limits: {max_running: 2, starts_per_second: 5}`: platform-wide limits of each of the component's functions."""
    keys = reader.mapping(node, where, _LIMIT_KEYS)
    if isinstance(node, yaml.MappingNode) and not node.value:
        reader.problem(where, "write {max_running: N, starts_per_second: R} (either or both), or leave 'limits' out")
    get = {k: swap(v) for k, v in keys.items()}
    running = reader.integer(*get["max_running"], minimum=1, maximum=MAX_LIMIT) if "max_running" in get else None
    rate: float | None = None
    if "starts_per_second" in get:
        rate_node, rate_where = get["starts_per_second"]
        text = reader.text(rate_node, rate_where)
        try:
            value = float(text) if text is not None else None
        except ValueError:
            value = None
            reader.problem(rate_where, f"expected a number of starts per second, got '{text}'; e.g. 5 or 0.5")
        if value is not None and not 0.001 <= value <= MAX_LIMIT:  # NaN too
            reader.problem(rate_where, f"must be between 0.001 (one start in 1000 s) and {MAX_LIMIT:,}, got {text.strip()}")  # type: ignore[union-attr]
        elif value is not None:
            rate = value
    if ("max_running" in get and running is None) or ("starts_per_second" in get and rate is None) or not keys:
        return None
    return FunctionLimits(running, rate)


def read_duration(reader: Reader, node: yaml.Node, where: Location) -> int | None:
    """A positive duration in ms (`parse_duration`'s syntax)."""
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


def read_size(reader: Reader, node: yaml.Node, where: Location) -> int | None:
    """A memory size in bytes (`parse_size`'s syntax), at least 1 MiB."""
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


def read_env(reader: Reader, node: yaml.Node, where: Location) -> dict[str, EnvValue] | None:
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


def read_allowed_hosts(reader: Reader, node: yaml.Node, where: Location) -> tuple[str, ...] | None:
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
