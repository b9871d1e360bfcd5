"""`platform call --priority` and the limits `platform functions` shows, as a user runs them."""

from __future__ import annotations

import json

from dolmen.platform.client import Client
from dolmen.platform.model import FunctionLimits
from tests.cli.test_executions_cli import platform
from tests.support.platform import activity, deploy

A = "testing:act/basic@1.0.0"


def test_call_with_a_priority_class_and_a_wrong_one(redis_url: str, client: Client) -> None:
    deploy(redis_url, [activity()])
    called = platform(redis_url, "--json", "call", f"{A}.double", "[3]", "--no-wait", "--priority", "low")
    assert called.returncode == 0, called.stderr
    execution_id = json.loads(called.stdout)["execution_id"]
    assert client.executions.require(execution_id).priority == "low"
    wrong = platform(redis_url, "call", f"{A}.double", "[3]", "--priority", "urgent")
    assert wrong.returncode == 2 and "'urgent' is not one of 'high', 'normal', 'low'" in wrong.stderr


def test_functions_show_their_limits(redis_url: str) -> None:
    deploy(redis_url, [activity(limits=FunctionLimits(max_running=2, starts_per_second=0.5))])
    listed = platform(redis_url, "functions")
    assert listed.returncode == 0, listed.stderr
    line = next(text for text in listed.stdout.splitlines() if f"{A}.double" in text)
    assert "2 running, 0.5/s" in line
    as_json = {f["ffqn"]: f for f in json.loads(platform(redis_url, "--json", "functions").stdout)["functions"]}
    assert as_json[f"{A}.double"]["limits"] == {"max_running": 2, "starts_per_second": 0.5}
