"""Deployment YAML: valid files become frozen specs; every mistake names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.model import EnvValue, RetryPolicy, SecretRef
from dolmen.platform.deploy.fields import parse_duration, parse_size
from dolmen.platform.deploy.spec import load_spec, parse_spec
from dolmen.platform.errors import DeploymentError

FILE = Path("/deploy/shop.yaml")

GOOD = """\
name: shop
components:
  - name: payments              # unique in the file
    kind: activity
    source: oci://127.0.0.1:5000/shop/payments:1.2.0
    retry: {max_attempts: 5, initial_backoff: 100ms, max_backoff: 30s}
    timeout: 10s
    memory: 64MiB
    env: {API_URL: "http://127.0.0.1:9000", RETRIES: 3, DEBUG: true}
  - name: checkout
    kind: workflow
    source: ./build/checkout.wasm
    upgrade: pinned
    blocking: unload
    blocking_timeout: 250ms
routes:
  - {method: post, path: "/checkout/{order-id}", function: shop:checkout/flow@1.0.0.run}
"""


def parse(text: str, env: dict[str, str] | None = None):
    return parse_spec(text, FILE, env or {})


def problem(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(DeploymentError) as caught:
        parse(text, env)
    return str(caught.value)


def test_good_file_becomes_a_frozen_spec() -> None:
    """Every key of the issue's example is read into typed values."""
    spec = parse(GOOD)
    assert spec.name == "shop"
    payments, checkout = spec.components
    assert payments.kind == "activity" and payments.source.kind == "oci"
    assert payments.source.reference is not None and payments.source.reference.tag == "1.2.0"
    assert payments.retry == RetryPolicy(5, 100, 30_000, False)
    assert payments.timeout_ms == 10_000 and payments.memory_limit_bytes == 64 * 1024 * 1024
    assert payments.env == {"API_URL": "http://127.0.0.1:9000", "RETRIES": "3", "DEBUG": "true"}
    assert checkout.source.path == Path("/deploy/build/checkout.wasm")
    assert (checkout.upgrade, checkout.blocking, checkout.blocking_timeout_ms) == ("pinned", "unload", 250)
    assert checkout.location.line == 10 and checkout.location.key == "components[1]"
    (route,) = spec.routes
    assert (route.route.method, route.params) == ("POST", ("order-id",))
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_defaults_apply_when_keys_are_left_out() -> None:
    """A component with only name, kind and source gets the documented defaults."""
    spec = parse("name: x\ncomponents:\n  - {name: a, kind: workflow, source: a.wasm}\n")
    (comp,) = spec.components
    assert (comp.upgrade, comp.blocking, comp.timeout_ms, comp.retry) == ("verified", "in-memory", 60_000, RetryPolicy())
    assert comp.template().digest == "" and comp.template().name == "a"
    assert (comp.instances, comp.max_instance_uses) == ("fresh", 1000)


@pytest.mark.parametrize("kind", ["activity", "workflow"])
def test_instances_may_be_reused(kind: str) -> None:
    """`instances: reuse` with a use limit reaches the component's config, for activities and workflows."""
    spec = parse(f"name: x\ncomponents:\n  - {{name: a, kind: {kind}, source: a.wasm, instances: reuse, max_instance_uses: 50}}\n")
    config = spec.components[0].template()
    assert (config.instances, config.max_instance_uses) == ("reuse", 50)
    assert type(config).from_json(config.to_json()) == config


def test_activity_allowed_hosts_are_read_checked_and_stored() -> None:
    """`allowed_hosts` patterns reach the config in canonical form; an empty list is kept (no egress at all)."""
    text = (
        "name: x\ncomponents:\n  - name: fetcher\n    kind: activity\n    source: a.wasm\n"
        '    allowed_hosts: [api.example.com, "*.Example.org:8443", "127.0.0.1:8080", "localhost:*", "[::1]:*"]\n'
        "  - {name: quiet, kind: activity, source: b.wasm, allowed_hosts: []}\n"
        "  - {name: open, kind: activity, source: c.wasm}\n"
    )
    fetcher, quiet, open_ = (c.template() for c in parse(text).components)
    assert fetcher.allowed_hosts == ("api.example.com", "*.example.org:8443", "127.0.0.1:8080", "localhost:*", "[::1]:*")
    assert (quiet.allowed_hosts, open_.allowed_hosts) == ((), None)
    for config in (fetcher, quiet, open_):
        assert type(config).from_json(config.to_json()) == config
    old = fetcher.to_json()
    del old["allowed_hosts"]  # a revision stored before allowed_hosts existed
    assert type(fetcher).from_json(old).allowed_hosts is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("250ms", 250), ("10s", 10_000), ("1.5s", 1500), ("5m", 300_000), ("1h", 3_600_000), (" 2 s ", 2000)],
)
def test_durations(text: str, expected: int) -> None:
    """Durations take ms, s, m and h units."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("value", "message"), [(10, "no unit"), ("10", "no unit"), ("3x", "not a duration"), ("1:30", "'1:30' is not a duration"), ("0.1ms", "whole number"), (True, "expected a duration"), ("-1s", "'-1s' is negative; a duration is positive, e.g. 1s"), ("- 5m", "e.g. 5m")])
def test_bad_durations(value: object, message: str) -> None:
    """A duration without a valid unit names the fix."""
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


def test_sizes() -> None:
    """Sizes take binary and decimal units, or plain bytes."""
    assert parse_size("256MiB") == 256 * 1024**2
    assert parse_size("1GB") == 10**9
    assert parse_size(4096) == 4096
    with pytest.raises(ValueError, match="256MiB"):
        parse_size("lots")


def test_env_references_are_replaced() -> None:
    """`${NAME}` comes from the environment, a number field reads the substituted text, and `$${` is a literal."""
    text = "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: ${SRC}\n    retry:\n      max_attempts: ${N}\n    env: {PRICE: \"$${NOT}\"}\n"
    spec = parse(text, {"SRC": "./a.wasm", "N": "7"})
    (comp,) = spec.components
    assert comp.source.path == Path("/deploy/a.wasm")
    assert comp.retry.max_attempts == 7
    assert comp.env == {"PRICE": "${NOT}"}


ACTIVITY = "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n"
# Plain scalars YAML reads as a boolean, a number, null, a date or a special tag (1e3 and 0o17 in YAML 1.2 only).
AS_WRITTEN = [
    "NO", "yes", "on", "Off", "1.10", "0755", "12:30", "~", "null", ".inf", "-.inf", ".NaN", "1e3", "0x1F",
    "0o17", "1_000", "+12", "3", "true", "2026-01-02", "2026-02-30", "2026-01-02T10:00:00Z", "=", "<<",
]  # fmt: skip


def env_of(text: str, env: dict[str, str] | None = None) -> dict[str, EnvValue]:
    (comp,) = parse(text, env).components
    return dict(comp.env)


def test_env_values_may_reference_secrets() -> None:
    """`{secret: NAME}` (flow or block style, NAME possibly from `${VAR}`) is a reference; literals stay text."""
    text = f"{ACTIVITY}    env:\n      API_URL: https://example.com\n      API_TOKEN: {{secret: payments-token}}\n      DB:\n        secret: ${{STAGE}}-db\n"
    assert env_of(text, {"STAGE": "prod"}) == {
        "API_URL": "https://example.com", "API_TOKEN": SecretRef("payments-token"), "DB": SecretRef("prod-db"),
    }  # fmt: skip
    config = parse(text, {"STAGE": "prod"}).components[0].template()
    assert config.secrets() == {"API_TOKEN": SecretRef("payments-token"), "DB": SecretRef("prod-db")}
    assert config.to_json()["env"]["API_TOKEN"] == {"secret": "payments-token"}


SECRET_CASES = [
    ("bad name", "T: {secret: Payments_Token}", ["shop.yaml:7: components[0].env.T.secret: 'Payments_Token' is not valid: use lowercase letters, digits and '-'"]),
    ("misspelt key", "T: {secrets: payments-token}", ["shop.yaml:7: components[0].env.T.secrets: unknown key 'secrets'; allowed keys here: secret", "components[0].env.T: a mapping here is a secret reference; write T: {secret: NAME}"]),
    ("extra key", "T: {secret: a, default: b}", ["components[0].env.T.default: unknown key 'default'; allowed keys here: secret"]),
    ("empty mapping", "T: {}", ["shop.yaml:7: components[0].env.T: a mapping here is a secret reference; write T: {secret: NAME}"]),
    ("no name", "T: {secret: }", ["shop.yaml:7: components[0].env.T.secret: names no secret; write T: {secret: NAME}, e.g. {secret: payments-token}"]),
    ("name as a list", "T: {secret: [a]}", ["components[0].env.T.secret: expected a single value, got a list"]),
    ("value as a list", "T: [a, b]", ["shop.yaml:7: components[0].env.T: expected one value or a secret reference, got a list"]),
    ("secret tag", "T: !secret payments-token", ["shop.yaml:7: components[0].env.T: the tag !secret does not apply here; a secret is written T: {secret: payments-token}"]),
    ("unset variable in the name", "T: {secret: \"${STAGE}-db\"}", ["components[0].env.T.secret: environment variable STAGE is not set"]),
]


@pytest.mark.parametrize(("what", "line", "fragments"), SECRET_CASES, ids=[c[0] for c in SECRET_CASES])
def test_bad_secret_references_name_file_line_key_and_fix(what: str, line: str, fragments: list[str]) -> None:
    """A malformed `{secret: NAME}` is reported at its line and key with the syntax to write instead."""
    message = problem(f"{ACTIVITY}    env:\n      {line}\n")
    for fragment in fragments:
        assert fragment in message, f"{what}: {fragment!r} not in {message!r}"


@pytest.mark.parametrize("value", AS_WRITTEN)
def test_env_values_are_the_text_written(value: str) -> None:
    """An unquoted env value reaches the component exactly as written, not as YAML 1.1 reads it."""
    assert env_of(f"{ACTIVITY}    env:\n      VALUE: {value}\n") == {"VALUE": value}
    assert env_of(f"{ACTIVITY}    env: {{VALUE: {value}}}\n") == {"VALUE": value}


@pytest.mark.parametrize("value", AS_WRITTEN)
def test_substituted_env_values_are_the_variables_text(value: str) -> None:
    """An unquoted `${NAME}` under env is the variable's exact text, as the value written in its place would be."""
    assert env_of(f"{ACTIVITY}    env:\n      VALUE: ${{V}}\n      QUOTED: \"${{V}}\"\n", {"V": value}) == {"VALUE": value, "QUOTED": value}


def test_quoted_empty_and_str_tagged_env_values() -> None:
    """Quotes, `!!str` and an empty variable give their text; only a value left out is refused."""
    text = f"{ACTIVITY}    env:\n      A: \"0755\"\n      B: !!str NO\n      C: ''\n      D: ${{EMPTY}}\n      E: '  spaced  '\n"
    assert env_of(text, {"EMPTY": ""}) == {"A": "0755", "B": "NO", "C": "", "D": "", "E": "  spaced  "}


def test_env_names_are_the_text_written() -> None:
    """Variable names YAML 1.1 reads as booleans or null (NO, ON, TRUE, NULL) stay names."""
    text = f"{ACTIVITY}    env:\n      NO: a\n      ON: b\n      TRUE: c\n      NULL: d\n      Y: e\n"
    assert env_of(text) == {"NO": "a", "ON": "b", "TRUE": "c", "NULL": "d", "Y": "e"}


def test_names_sources_and_routes_are_the_text_written() -> None:
    """Every text field is read as written: a deployment named 1.10, a component named no, a source named 0755."""
    text = (
        "name: 1.10\ncomponents:\n  - {name: no, kind: activity, source: 0755}\n  - name: on\n    kind: workflow\n    source: ${SRC}\n"
        "routes:\n  - {method: post, path: \"/v/{n}\", function: a:b/c@1.0.0.d}\n"
    )
    spec = parse(text, {"SRC": "2026-01-02"})
    assert spec.name == "1.10"
    assert [(c.name, c.source.text) for c in spec.components] == [("no", "0755"), ("on", "2026-01-02")]
    assert spec.components[0].source.path == Path("/deploy/0755")
    assert (spec.routes[0].route.method, spec.routes[0].route.path) == ("POST", "/v/{n}")


def test_numbers_and_booleans_are_read_from_their_text() -> None:
    """A whole number is decimal digits (010 is ten, quoted or substituted too); booleans take true/false/yes/no/on/off."""
    text = f"{ACTIVITY}    retry:\n      max_attempts: 010\n      retry_on_err: yes\n    timeout: \"${{T}}\"\n"
    (comp,) = parse(text, {"T": "2s"}).components
    assert (comp.retry.max_attempts, comp.retry.retry_on_err, comp.timeout_ms) == (10, True, 2000)
    text = f"{ACTIVITY}    retry:\n      max_attempts: \"7\"\n      retry_on_err: ${{B}}\n"
    (comp,) = parse(text, {"B": "Off"}).components
    assert (comp.retry.max_attempts, comp.retry.retry_on_err) == (7, False)

BAD_CASES = [
    # (what, yaml, expected fragments)
    ("unknown top-level key", "name: x\nversion: 2\ncomponents: []\n", ["shop.yaml:2: version: unknown key 'version'", "allowed keys here: name, retention, components, routes"]),
    ("unknown component key", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    timout: 1s\n", ["shop.yaml:6: components[0].timout: unknown key 'timout'"]),
    ("bad duration", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    timeout: 10\n", ["shop.yaml:6: components[0].timeout: 10 has no unit; write e.g. 10ms, 10s or 10d"]),
    ("bad nested duration", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    retry:\n      max_backoff: soon\n", ["shop.yaml:7: components[0].retry.max_backoff: 'soon' is not a duration"]),
    ("backoff order", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    retry: {initial_backoff: 2s, max_backoff: 1s}\n", ["components[0].retry.max_backoff: max_backoff (1000ms) is shorter than initial_backoff (2000ms)"]),
    ("unset variable", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env: {TOKEN: \"${API_TOKEN}\"}\n", ["shop.yaml:6: components[0].env.TOKEN: environment variable API_TOKEN is not set"]),
    ("bad variable", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: \"${1X}\"\n", ["components[0].source: '${1X}' is not a valid variable reference"]),
    ("missing keys", "name: x\ncomponents:\n  - name: a\n", ["shop.yaml:3: components[0]: the key 'kind' is missing", "the key 'source' is missing"]),
    ("bad kind", "name: x\ncomponents:\n  - {name: a, kind: webhook, source: a.wasm}\n", ["components[0].kind: 'webhook' is not one of: activity, workflow"]),
    ("duplicate name", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\n  - {name: a, kind: activity, source: b.wasm}\n", ["shop.yaml:4: components[1].name: component name 'a' is used twice"]),
    ("duplicate key", "name: x\nname: y\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\n", ["shop.yaml:2: name: key 'name' appears twice"]),
    ("workflow with env", "name: x\ncomponents:\n  - {name: a, kind: workflow, source: a.wasm, env: {A: b}}\n", ["components[0].env: workflows get no environment variables"]),
    ("activity with upgrade", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, upgrade: force}\n", ["components[0].upgrade: 'upgrade' applies to workflows only"]),
    ("workflow uses without reuse", "name: x\ncomponents:\n  - {name: a, kind: workflow, source: a.wasm, max_instance_uses: 5}\n", ["components[0].max_instance_uses: 'max_instance_uses' applies only with 'instances: reuse'"]),
    ("bad instances", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, instances: pooled}\n", ["components[0].instances: 'pooled' is not one of: fresh, reuse"]),
    ("bad uses", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, instances: reuse, max_instance_uses: 0}\n", ["components[0].max_instance_uses: must be at least 1"]),
    ("too many uses", "name: x\ncomponents:\n  - {name: a, kind: workflow, source: a.wasm, instances: reuse, max_instance_uses: 99999999999999999999999}\n", ["components[0].max_instance_uses: must be at most 1,000,000,000, got 99,999,999,999,999,999,999,999"]),
    ("instances as a YAML boolean", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, instances: yes}\n", ["components[0].instances: 'yes' is not one of: fresh, reuse"]),
    ("kind as a number", "name: x\ncomponents:\n  - {name: a, kind: 1, source: a.wasm}\n", ["components[0].kind: '1' is not one of: activity, workflow"]),
    ("env name ending in a newline", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, env: {\"A\\n\": b}}\n", ["is not a valid environment variable name"]),
    ("component name ending in a newline", "name: x\ncomponents:\n  - {name: \"a\\n\", kind: activity, source: a.wasm}\n", ["components[0].name:"]),
    ("uses without reuse", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, max_instance_uses: 5}\n", ["components[0].max_instance_uses: 'max_instance_uses' applies only with 'instances: reuse'"]),
    ("uses with fresh", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, instances: fresh, max_instance_uses: 5}\n", ["add 'instances: reuse' or remove it"]),
    ("workflow with allowed_hosts", "name: x\ncomponents:\n  - {name: a, kind: workflow, source: a.wasm, allowed_hosts: [api.example.com]}\n", ["components[0].allowed_hosts: workflows make no HTTP requests", "give 'allowed_hosts' to the activity that makes them"]),
    ("allowed_hosts not a list", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    allowed_hosts: api.example.com\n", ["shop.yaml:6: components[0].allowed_hosts: expected a list of host patterns, e.g. allowed_hosts: [\"api.example.com\""]),
    ("allowed host with a scheme", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    allowed_hosts:\n      - api.example.com\n      - https://api.example.com/v1\n", ["shop.yaml:8: components[0].allowed_hosts[1]: 'https://api.example.com/v1' has a scheme; write the host alone, e.g. api.example.com"]),
    ("allowed host with a bad port", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [\"api.example.com:99999\"]}\n", ["components[0].allowed_hosts[0]: 'api.example.com:99999': '99999' is not a port; write a number from 1 to 65535, or * for any port"]),
    ("allowed host wildcard in the middle", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [\"api.*.com\"]}\n", ["components[0].allowed_hosts[0]: 'api.*.com': a wildcard is allowed only as the first label, as in *.example.org"]),
    ("allowed host IPv6 without brackets", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [\"fd00::1\"]}\n", ["write an IPv6 address in brackets, e.g. [fd00::1]"]),
    ("allowed host twice", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [api.example.com, API.example.com]}\n", ["components[0].allowed_hosts[1]: 'API.example.com' is listed twice; keep one"]),
    ("allowed host as a list", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [[a]]}\n", ["components[0].allowed_hosts[0]: expected a single value, got a list"]),
    ("allowed host left empty", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [\"\"]}\n", ["components[0].allowed_hosts[0]: a pattern must not be empty"]),
    ("bad policy", "name: x\ncomponents:\n  - {name: a, kind: workflow, source: a.wasm, upgrade: sometimes}\n", ["components[0].upgrade: 'sometimes' is not one of: verified, pinned, force"]),
    ("bad reference", "name: x\ncomponents:\n  - {name: a, kind: activity, source: \"oci://127.0.0.1:5000/Shop\"}\n", ["components[0].source: 'oci://127.0.0.1:5000/Shop'", "not a valid repository name"]),
    ("other scheme", "name: x\ncomponents:\n  - {name: a, kind: activity, source: \"https://x/a.wasm\"}\n", ["neither an oci:// reference nor a file path"]),
    ("components not a list", "name: x\ncomponents: {a: 1}\n", ["shop.yaml:2: components: expected a list, got a mapping"]),
    ("empty components", "name: x\ncomponents: []\n", ["components: the list is empty"]),
    ("no name", "components:\n  - {name: a, kind: activity, source: a.wasm}\n", ["shop.yaml:1: the key 'name' is missing"]),
    ("bad memory", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, memory: 12}\n", ["components[0].memory: 12 bytes is too little memory"]),
    ("bad attempts", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, retry: {max_attempts: many}}\n", ["components[0].retry.max_attempts: expected a whole number, got 'many'"]),
    ("route method", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\nroutes:\n  - {method: FETCH, path: /a, function: a:b/c@1.0.0.d}\n", ["shop.yaml:5: routes[0].method: 'FETCH' is not one of"]),
    ("route path", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\nroutes:\n  - {path: \"a/{x\", function: a:b/c@1.0.0.d}\n", ["routes[0].path: 'a/{x' must start with '/'", "unbalanced"]),
    ("route function", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\nroutes:\n  - {path: /a, function: run}\n", ["routes[0].function: 'run' is not a function name"]),
    ("route twice", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\nroutes:\n  - {path: /a, function: a:b/c@1.0.0.d}\n  - {path: /a, function: a:b/c@1.0.0.e}\n", ["shop.yaml:6: routes[1]: route POST /a is declared twice"]),
    ("not yaml", "name: x\ncomponents: [\n", ["shop.yaml:3: not valid YAML", "fix the syntax and deploy again"]),
    # A plain value that starts with * or & is a YAML alias or anchor; with @ or a backtick, no value at all.
    ("allowed host * unquoted", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [*]}\n", ["shop.yaml:3: not valid YAML", "read as a YAML alias or anchor: quote it (e.g. \"*.example.org\")"]),
    ("allowed host *.name unquoted", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    allowed_hosts:\n      - *.example.org\n", ["shop.yaml:7: not valid YAML", "quote it (e.g. \"*.example.org\")"]),
    ("allowed host *name unquoted", "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, allowed_hosts: [*example]}\n", ["found undefined alias 'example'", "quote it"]),
    ("env value starting with @", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      OWNER: @team\n", ["shop.yaml:7: not valid YAML: found character '@'", "must be quoted (e.g. \"@team\")"]),
    ("not a mapping", "- a\n- b\n", ["expected a mapping with keys name, retention, components, routes, schedules, got a list"]),
    # Values are read as written, never through YAML 1.1's implicit types; what cannot be used is refused.
    ("env value with a tag", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      MODE: !!int 0755\n", ["shop.yaml:7: components[0].env.MODE: the tag !!int does not apply here", "remove the tag"]),
    ("unknown tag", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      KEY: !secret abc\n", ["shop.yaml:7: components[0].env.KEY: the tag !secret does not apply here"]),
    ("env value with NUL", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      KEY: \"a\\0b\"\n", ["shop.yaml:7: components[0].env.KEY: contains the NUL character", "remove it"]),
    ("env value with half a surrogate", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      KEY: \"\\ud800\"\n", ["components[0].env.KEY: contains \\ud800, half of a UTF-16 surrogate pair"]),
    ("env value left out", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      KEY:\n", ["shop.yaml:7: components[0].env.KEY: has no value; write one, or quote an empty string as \"\""]),
    ("env key twice", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      KEY: a\n      KEY: b\n", ["shop.yaml:8: components[0].env.KEY: 'KEY' appears twice; keep one"]),
    ("bad env name", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    env:\n      1X: a\n", ["shop.yaml:7: components[0].env.1X: '1X' is not a valid environment variable name"]),
    ("attempts in hex", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    retry:\n      max_attempts: 0x1F\n", ["shop.yaml:7: components[0].retry.max_attempts: expected a whole number, got '0x1F'; write it in decimal digits"]),
    ("attempts as a time", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    retry:\n      max_attempts: 1:30\n", ["components[0].retry.max_attempts: expected a whole number, got '1:30'"]),
    ("attempts with underscores", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    retry:\n      max_attempts: 1_000\n", ["components[0].retry.max_attempts: expected a whole number, got '1_000'"]),
    ("timeout as a time", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    timeout: 12:30\n", ["shop.yaml:6: components[0].timeout: '12:30' is not a duration"]),
    ("timeout as an impossible date", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    timeout: 2026-02-30\n", ["shop.yaml:6: components[0].timeout: '2026-02-30' is not a duration"]),
    ("memory with a leading zero", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    memory: 0755\n", ["components[0].memory: 755 bytes is too little memory"]),
    ("retry_on_err as a number", "name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n    retry:\n      retry_on_err: 1\n", ["components[0].retry.retry_on_err: expected true or false, got '1'"]),
    ("YAML boolean as a key", "name: x\non: push\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\n", ["shop.yaml:2: on: unknown key 'on'"]),
    ("component name YAML reads as false", "name: x\ncomponents:\n  - {name: Off, kind: activity, source: a.wasm}\n", ["components[0].name: 'Off' is not valid: use lowercase letters"]),
    ("deployment name as a list", "name: [a]\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\n", ["shop.yaml:1: name: expected a single value, got a list"]),
]


@pytest.mark.parametrize(("what", "text", "fragments"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_files_name_file_line_and_key(what: str, text: str, fragments: list[str]) -> None:
    """Each mistake is reported with the file, the line and the key path."""
    message = problem(text)
    for fragment in fragments:
        assert fragment in message, f"{what}: {fragment!r} not in {message!r}"


def test_every_problem_is_reported_at_once() -> None:
    """A file with several mistakes lists all of them."""
    text = "name: x\ncomponents:\n  - {name: a, kind: activity, source: a.wasm, timeout: 1}\n  - {name: b, kind: job, source: b.wasm}\n"
    message = problem(text)
    assert "has 2 problems" in message and "components[0].timeout" in message and "components[1].kind" in message
    assert "nothing was deployed" in message


def test_empty_and_missing_files(tmp_path: Path) -> None:
    """An empty file and a missing file are reported by name."""
    with pytest.raises(DeploymentError, match="is empty"):
        parse("")
    with pytest.raises(DeploymentError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


STUB = """\
name: shop
components:
  - name: approvals
    kind: stub
    source: ./build/approvals.wasm
    retention: 3d
"""


def test_a_stub_takes_a_source_and_a_retention_only() -> None:
    """`kind: stub` is read like the others; it keeps the retention of its top-level executions."""
    (approvals,) = parse(STUB).components
    assert approvals.kind == "stub" and approvals.source.path == Path("/deploy/build/approvals.wasm")
    assert approvals.retention_ms == 3 * 86_400_000


@pytest.mark.parametrize("line", ["retry: {max_attempts: 2}", "timeout: 5s", "env: {A: b}", "blocking: unload", "instances: reuse"])
def test_run_settings_on_a_stub_are_refused(line: str) -> None:
    """A stub is never run: settings of a run name the key and say so."""
    key = line.split(":")[0]
    message = problem(STUB + f"    {line}\n")
    assert f"shop.yaml:7: components[0].{key}: '{key}' does not apply to a stub" in message, message


EXTERNAL = """\
name: shop
components:
  - name: labels
    kind: external
    source: ./build/labels.wasm
    retry: {max_attempts: 2, initial_backoff: 50ms}
    timeout: 5s
"""


def test_an_external_component_takes_retry_and_timeout() -> None:
    """`kind: external` keeps the attempts' settings its workers are held to."""
    (labels,) = parse(EXTERNAL).components
    assert labels.kind == "external" and labels.timeout_ms == 5000
    assert (labels.retry.max_attempts, labels.retry.initial_backoff_ms) == (2, 50)


@pytest.mark.parametrize("line", ["env: {A: b}", "memory: 64MiB", "blocking: unload", "instances: reuse"])
def test_settings_of_a_wasm_run_on_an_external_component_are_refused(line: str) -> None:
    """An external component runs in workers outside the platform: settings of a wasm run name the key and say so."""
    key = line.split(":")[0]
    message = problem(EXTERNAL + f"    {line}\n")
    assert f"shop.yaml:8: components[0].{key}: '{key}' does not apply to an external component" in message, message
