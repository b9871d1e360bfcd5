"""What a claim may name: functions of external components only; runners read every queue but theirs."""

from __future__ import annotations

import pytest

from dolmen.platform.cli.deploy_output import settings
from dolmen.platform.model import ComponentConfig, RetryPolicy, Revision
from dolmen.platform.errors import UsageError
from dolmen.platform.external import check_claimed
from dolmen.platform.wit.types import FunctionType, Prim

SIG = FunctionType((("key", Prim("string")),), Prim("u32"))
EXTERNAL = ComponentConfig(
    "labels", "external", "sha256:aa", "./labels.wasm", {"shop:labels/print@1.0.0.label": SIG},
    retry=RetryPolicy(max_attempts=2), timeout_ms=300_000,
)  # fmt: skip
ACTIVITY = ComponentConfig("pay", "activity", "sha256:bb", "./pay.wasm", {"shop:pay/api@1.0.0.charge": SIG})
REVISION = Revision(1, "shop", 0, (EXTERNAL, ACTIVITY))


def test_runners_read_the_queues_of_everything_but_external_functions() -> None:
    """`runnable` leaves external functions out; `external` lists them."""
    assert REVISION.runnable() == {"shop:pay/api@1.0.0.charge"}
    assert REVISION.external() == {"shop:labels/print@1.0.0.label"}


def test_a_claim_names_external_functions_once_each() -> None:
    """The ffqns of a claim come back de-duplicated, in order."""
    ffqn = "shop:labels/print@1.0.0.label"
    assert check_claimed([ffqn, ffqn], REVISION) == [ffqn]


@pytest.mark.parametrize(
    ("ffqns", "path", "words"),
    [
        ([], "ffqns", "non-empty list"),
        ("shop:labels/print@1.0.0.label", "ffqns", "non-empty list"),
        (["shop:labels/print@1.0.0.label", "shop:pay/api@1.0.0.charge"], "ffqns[1]", "kind: activity"),
        (["shop:nope/x@1.0.0.y"], "ffqns[0]", "not deployed"),
    ],
)
def test_a_claim_of_anything_else_names_the_bad_entry(ffqns: object, path: str, words: str) -> None:
    """An empty list, a function that is not external or not deployed: a `UsageError` naming the entry."""
    with pytest.raises(UsageError) as raised:
        check_claimed(ffqns, REVISION)
    assert raised.value.path == path and words in raised.value.message


def test_deploy_output_shows_only_the_settings_an_external_component_takes() -> None:
    """`platform deploy` prints who runs it, its timeout and retries, and nothing of a wasm run (memory, instances)."""
    line = settings(EXTERNAL)
    assert line.startswith("run by external workers") and "timeout 300s" in line and "retry 2 attempts" in line
    assert "memory" not in line and "instances" not in line
