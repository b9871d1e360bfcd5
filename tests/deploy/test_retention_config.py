"""`retention` in a deployment: read per component and per function, stored in the revision, checked against exports."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.model import ComponentConfig
from dolmen.platform.deploy.pipeline import deploy
from dolmen.platform.deploy.fields import parse_duration
from dolmen.platform.deploy.spec import load_spec, parse_spec
from dolmen.platform.errors import DeploymentError
from dolmen.platform.store.connection import connect
from tests.deploy.conftest import Cli, deployment, write
from tests.support.guests import DATA_DIR

FILE = Path("/deploy/shop.yaml")
A = "testing:act/basic@1.0.0"


def component(settings: str) -> ComponentConfig:
    text = f"name: x\ncomponents:\n  - name: a\n    kind: activity\n    source: a.wasm\n{settings}"
    return parse_spec(text, FILE, {}).components[0].template()


def problem(settings: str) -> str:
    with pytest.raises(DeploymentError) as caught:
        component(settings)
    return str(caught.value)


def test_durations_take_days() -> None:
    """Retention is counted in days as well as the other units."""
    assert parse_duration("7d") == 7 * 86_400_000 and parse_duration("1.5d") == 129_600_000


def test_retention_per_component_and_per_function_reaches_the_config() -> None:
    """A duration applies to every function; a mapping gives a default and per-ffqn overrides."""
    whole = component("    retention: 3d\n")
    assert (whole.retention_ms, whole.function_retention_ms) == (3 * 86_400_000, {})
    assert whole.retention_for(f"{A}.double") == 3 * 86_400_000
    split = component(f'    retention:\n      default: 12h\n      functions: {{"{A}.double": 90s}}\n')
    assert split.retention_for(f"{A}.double") == 90_000 and split.retention_for(f"{A}.shout") == 12 * 3_600_000
    only = component(f'    retention: {{functions: {{"{A}.double": 1h}}}}\n')
    assert only.retention_for(f"{A}.double") == 3_600_000 and only.retention_for(f"{A}.shout") is None
    assert component("").retention_for(f"{A}.double") is None  # the platform's default
    for config in (whole, split, only):
        assert ComponentConfig.from_json(config.to_json()) == config


def test_a_revision_stored_before_retention_still_loads() -> None:
    """A stored component without the retention keys gets the platform's default."""
    stored = component("    retention: 3d\n").to_json()
    del stored["retention_ms"], stored["function_retention_ms"]
    old = ComponentConfig.from_json(stored)
    assert (old.retention_ms, old.function_retention_ms) == (None, {})


BAD = [
    ("no unit", "    retention: 7\n", "shop.yaml:6: components[0].retention: 7 has no unit; write e.g. 7ms, 7s or 7d"),
    ("zero", "    retention: 0\n", "shop.yaml:6: components[0].retention: 0 is no duration: write a positive one"),
    ("zero", "    retention: 0s\n", "shop.yaml:6: components[0].retention: must be longer than 0ms"),
    ("unknown key", "    retention: {default: 1d, keep: 2d}\n", "components[0].retention.keep: unknown key 'keep'; allowed keys here: default, functions"),
    ("empty mapping", "    retention: {}\n", "components[0].retention: write a duration (retention: 7d) or {default: 7d, functions: {FFQN: 1h}}"),
    ("bad default", "    retention:\n      default: soon\n", "shop.yaml:7: components[0].retention.default: 'soon' is not a duration"),
    ("functions as a list", "    retention: {functions: [a]}\n", "components[0].retention.functions: expected a mapping of FFQN: duration"),
    ("bad function name", "    retention:\n      functions:\n        double: 1h\n", "shop.yaml:8: components[0].retention.functions.double: 'double' is not a function name"),
    ("bad function duration", f"    retention:\n      functions:\n        {A}.double: 1w\n", f"shop.yaml:8: components[0].retention.functions.{A}.double: '1w' is not a duration"),
    ("function twice", f"    retention:\n      functions:\n        {A}.double: 1h\n        {A}.double: 2h\n", f"shop.yaml:9: components[0].retention.functions.{A}.double: '{A}.double' appears twice; keep one"),
]


@pytest.mark.parametrize(("what", "settings", "fragment"), BAD, ids=[c[0] for c in BAD])
def test_bad_retention_names_file_line_key_and_fix(what: str, settings: str, fragment: str) -> None:
    """Each mistake names the file, the line, the key and the fix."""
    message = problem(settings)
    assert fragment in message, f"{what}: {fragment!r} not in {message!r}"


def test_a_function_the_component_does_not_export_is_refused(workdir: Path, redis_url: str) -> None:
    """A per-function retention must name an export of its component; the deployment is refused with file:line:key."""
    text = deployment("wf1").replace(
        "    timeout: 120s\n", f'    timeout: 120s\n    retention:\n      functions: {{"{A}.triple": 1h}}\n', 1
    )
    path = write(workdir, "bad.yaml", text)
    client = connect(redis_url)
    try:
        with pytest.raises(DeploymentError) as caught:
            deploy(load_spec(path), client, DATA_DIR)
    finally:
        client.close()
    message = str(caught.value)
    assert f"bad.yaml:7: components[0].retention: component 'act' does not export {A}.triple" in message
    assert f"{A}.double" in message and "nothing was deployed" in message


def test_deployments_show_names_the_retention(workdir: Path, cli: Cli) -> None:
    """A deployed retention is stored in the revision and shown with the component's settings."""
    text = deployment("wf1").replace(
        "    timeout: 120s\n", f'    timeout: 120s\n    retention: {{default: 2d, functions: {{"{A}.double": 90m}}}}\n', 1
    )
    done = cli("deploy", str(write(workdir, "ok.yaml", text)))
    assert done.returncode == 0, done.stderr
    assert f"; retention 2d, 90m for {A}.double\n" in done.stdout
    (act,) = [c for c in cli.json("deployments", "show")["components"] if c["name"] == "act"]
    assert (act["retention_ms"], act["function_retention_ms"]) == (2 * 86_400_000, {f"{A}.double": 90 * 60_000})


def test_a_deployment_wide_retention_is_the_default_of_components_naming_none() -> None:
    """`retention:` at the top is every component's default; a component's own default wins, its per-function ones stay."""
    text = (
        "name: x\nretention: 14d\ncomponents:\n"
        "  - {name: a, kind: activity, source: a.wasm}\n"
        "  - {name: b, kind: activity, source: b.wasm, retention: 1h}\n"
        f'  - {{name: c, kind: activity, source: c.wasm, retention: {{functions: {{"{A}.double": 90s}}}}}}\n'
    )
    a, b, c = (spec.template() for spec in parse_spec(text, FILE, {}).components)
    assert a.retention_for(f"{A}.double") == 14 * 86_400_000
    assert b.retention_for(f"{A}.double") == 3_600_000
    assert c.retention_for(f"{A}.double") == 90_000 and c.retention_for(f"{A}.shout") == 14 * 86_400_000
    with pytest.raises(DeploymentError) as caught:
        parse_spec("name: x\nretention: {default: 1d}\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\n", FILE, {})
    assert "shop.yaml:2: retention: at the top level, retention takes one duration" in str(caught.value)
    with pytest.raises(DeploymentError) as caught:
        parse_spec("name: x\nretention: 7\ncomponents:\n  - {name: a, kind: activity, source: a.wasm}\n", FILE, {})
    assert "shop.yaml:2: retention: 7 has no unit" in str(caught.value)
