"""`history` in a deployment: a workflow's history limit, read, stored in the revision, and refused when bad."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.model import ComponentConfig, HistoryLimit
from dolmen.platform.deploy.spec import parse_spec
from dolmen.platform.errors import DeploymentError

FILE = Path("/deploy/shop.yaml")


def component(settings: str, kind: str = "workflow") -> ComponentConfig:
    text = f"name: x\ncomponents:\n  - name: w\n    kind: {kind}\n    source: w.wasm\n{settings}"
    return parse_spec(text, FILE, {}).components[0].template()


def problem(settings: str, kind: str = "workflow") -> str:
    with pytest.raises(DeploymentError) as caught:
        component(settings, kind)
    return str(caught.value)


def test_history_reaches_the_config_and_survives_storage() -> None:
    assert component("").history == HistoryLimit() == HistoryLimit(20_000, 16 * 1024 * 1024)
    both = component("    history: {max_events: 500, max_bytes: 1MiB}\n")
    assert both.history == HistoryLimit(500, 1024 * 1024)
    assert component("    history: {max_events: 500}\n").history == HistoryLimit(500, HistoryLimit().max_bytes)
    assert component("    history: {max_bytes: 64KiB}\n").history == HistoryLimit(HistoryLimit().max_events, 65536)
    assert ComponentConfig.from_json(both.to_json()) == both
    stored = both.to_json()
    del stored["history"]  # a revision stored before the limit existed: the defaults
    assert ComponentConfig.from_json(stored).history == HistoryLimit()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("    history: {max_events: 5}\n", "must be at least 10, got 5"),
        ("    history: {max_events: lots}\n", "expected a whole number, got 'lots'"),
        ("    history: {max_bytes: 100}\n", "give at least 4KiB"),
        ("    history: {max_bytes: big}\n", "expected a size such as 256MiB"),
        ("    history: {events: 10}\n", "events"),
        ("    history: {}\n", "max_events: 20000, max_bytes: 16MiB"),
    ],
)
def test_a_bad_history_names_the_key_and_the_fix(settings: str, expected: str) -> None:
    message = problem(settings)
    assert expected in message and "history" in message and "shop.yaml:6" in message


def test_history_applies_to_workflows_only() -> None:
    message = problem("    history: {max_events: 500}\n", kind="activity")
    assert "'history' applies to workflows only" in message
