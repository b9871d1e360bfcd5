"""`platform executions pause|resume ID` and `--ffqn FFQN`, as a user runs them."""

from __future__ import annotations

import json

from dolmen.platform.client import Client
from tests.cli.test_executions_cli import platform
from tests.support.platform import Processes, activity, deploy, workflow

A = "testing:act/basic@1.0.0"


def test_pause_and_resume_an_execution_from_the_cli(redis_url: str, processes: Processes, client: Client) -> None:
    """Pause, pause again, resume and resume again say what they did; the resumed activity then runs."""
    deploy(redis_url, [activity(), workflow()])
    execution_id = client.submit(f"{A}.double", [4]).execution_id
    paused = platform(redis_url, "executions", "pause", execution_id)
    assert paused.returncode == 0, paused.stderr
    expected = f"{execution_id}: paused; no runner takes it until it is resumed (what runs now finishes its step)"
    assert paused.stdout.strip() == expected
    again = platform(redis_url, "executions", "pause", execution_id)
    assert again.returncode == 0 and again.stdout.strip() == f"{execution_id}: was already paused"
    listed = platform(redis_url, "executions", "list")
    assert "pending (paused)" in listed.stdout
    processes.runner()
    resumed = platform(redis_url, "--json", "executions", "resume", execution_id)
    assert resumed.returncode == 0
    assert json.loads(resumed.stdout) == {"execution_id": execution_id, "resume": "done", "queued": True}
    assert client.wait(execution_id, 60).outcome.value == 8  # type: ignore[union-attr]
    finished = platform(redis_url, "executions", "pause", execution_id)
    assert finished.returncode == 1
    assert finished.stderr.strip() == f"error: execution {execution_id} ({A}.double) has already finished; there is nothing to pause"
    unknown = platform(redis_url, "executions", "resume", "E_01JD8X3K5QZ6V2N4M7P9R0S1T2")
    assert unknown.returncode == 3 and "E_01JD8X3K5QZ6V2N4M7P9R0S1T2 does not exist" in unknown.stderr


def test_pause_and_resume_a_function_from_the_cli(redis_url: str) -> None:
    """`--ffqn` pauses and resumes a whole function; an id and --ffqn together, or neither, is a usage error."""
    deploy(redis_url, [activity(), workflow()])
    paused = platform(redis_url, "executions", "pause", "--ffqn", f"{A}.double")
    assert paused.returncode == 0 and "paused; runners take none of its executions" in paused.stdout
    again = platform(redis_url, "--json", "executions", "pause", "--ffqn", f"{A}.double")
    assert json.loads(again.stdout) == {"ffqn": f"{A}.double", "pause": "already"}
    listed = platform(redis_url, "functions")
    assert f"{A}.double (paused)" in listed.stdout and f"{A}.slow (paused)" not in listed.stdout
    as_json = {f["ffqn"]: f for f in json.loads(platform(redis_url, "--json", "functions").stdout)["functions"]}
    assert as_json[f"{A}.double"]["paused"] is True and "paused" not in as_json[f"{A}.slow"]
    resumed = platform(redis_url, "executions", "resume", "--ffqn", f"{A}.double")
    assert resumed.returncode == 0 and resumed.stdout.strip() == f"{A}.double: resumed; runners take its executions again"
    unknown = platform(redis_url, "executions", "pause", "--ffqn", f"{A}.triple")
    assert unknown.returncode == 3
    both = platform(redis_url, "executions", "pause", "E_01JD8X3K5QZ6V2N4M7P9R0S1T2", "--ffqn", f"{A}.double")
    neither = platform(redis_url, "executions", "pause")
    assert both.returncode == 2 and neither.returncode == 2
    assert "give one execution id (platform executions pause E_...) or --ffqn FFQN" in neither.stderr
