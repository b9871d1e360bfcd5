"""`limits` in a deployment: per-function limits, read, stored in the revision, and refused when bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.model import ComponentConfig, FunctionLimits, Revision
from dolmen.platform.deploy.spec import parse_spec
from dolmen.platform.errors import DeploymentError

FILE = Path("/deploy/shop.yaml")


def component(settings: str, kind: str = "activity") -> ComponentConfig:
    text = f"name: x\ncomponents:\n  - name: w\n    kind: {kind}\n    source: w.wasm\n{settings}"
    return parse_spec(text, FILE, {}).components[0].template()


def problem(settings: str, kind: str = "activity") -> str:
    with pytest.raises(DeploymentError) as caught:
        component(settings, kind)
    return str(caught.value)


def test_limits_reach_the_config_and_survive_storage() -> None:
    assert component("").limits == FunctionLimits() and not FunctionLimits().any
    both = component("    limits: {max_running: 2, starts_per_second: 0.5}\n")
    assert both.limits == FunctionLimits(2, 0.5) and both.limits.interval_ms == 2000
    assert component("    limits: {max_running: 3}\n", kind="workflow").limits == FunctionLimits(3, None)
    assert component("    limits: {starts_per_second: 40}\n", kind="external").limits == FunctionLimits(None, 40.0)
    assert component("    limits: {starts_per_second: .5}\n").limits == component("    limits: {starts_per_second: 5e-1}\n").limits
    assert ComponentConfig.from_json(both.to_json()) == both
    assert "limits" not in component("").to_json()  # revisions without limits are stored as before
    with_functions = ComponentConfig("w", "activity", "d", "s", {"a:b/c@1.0.0.f": None}, limits=FunctionLimits(1))  # type: ignore[dict-item]
    assert Revision(1, "x", 0, (with_functions,)).limits() == {"a:b/c@1.0.0.f": FunctionLimits(1)}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("    limits: {max_running: 0}\n", "must be at least 1, got 0"),
        ("    limits: {max_running: many}\n", "expected a whole number, got 'many'"),
        ("    limits: {starts_per_second: fast}\n", "expected a number of starts per second, got 'fast'; e.g. 5 or 0.5"),
        ("    limits: {starts_per_second: 0}\n", "must be between 0.001 (one start in 1000 s) and 1,000,000, got 0"),
        ("    limits: {starts_per_second: -2}\n", "must be between 0.001 (one start in 1000 s) and 1,000,000, got -2"),
        ("    limits: {starts_per_second: nan}\n", "must be between 0.001 (one start in 1000 s) and 1,000,000, got nan"),
        ("    limits: {concurrency: 2}\n", "concurrency"),
        ("    limits: {}\n", "write {max_running: N, starts_per_second: R}"),
    ],
)
def test_bad_limits_name_the_key_and_the_fix(settings: str, expected: str) -> None:
    message = problem(settings)
    assert expected in message and "limits" in message and "shop.yaml:6" in message


def test_a_stub_takes_no_limits() -> None:
    assert "'limits' does not apply to a stub" in problem("    limits: {max_running: 1}\n", kind="stub")
