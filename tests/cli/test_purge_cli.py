"""`platform executions purge`, as a user runs it: filters, a dry run, human and JSON output, and what a purged execution is."""

from __future__ import annotations

import datetime as dt
import json
import time

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from tests.support.cli import run_platform
from tests.support.guests import DATA_DIR
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support import indexes

A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"


def purge(redis_url: str, *args: str):  # type: ignore[no-untyped-def]
    # Wide enough that the table shows whole ids on one line.
    return run_platform("--redis", redis_url, "--data-dir", str(DATA_DIR), *args, env={"COLUMNS": "200"}, timeout=120)


def purged_json(redis_url: str, *args: str) -> dict:  # type: ignore[type-arg]
    done = purge(redis_url, "--json", "executions", "purge", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def test_purge_filters_dry_run_and_output(redis_url: str, processes: Processes, client: Client) -> None:
    """Purge picks finished trees by time, function and outcome; --dry-run removes nothing; a purged one is not found."""
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=1)), workflow()])
    processes.runner("--concurrency", "4")
    processes.scheduler()

    def run(ffqn: str, params: list[object]) -> str:
        execution_id = client.submit(ffqn, params).execution_id
        assert client.wait(execution_id, 120).status == "finished"
        time.sleep(0.01)  # distinct finish times
        return execution_id

    first = run(f"{A}.double", [1])
    second = run(f"{A}.double", [2])
    err = run(f"{A}.maybe", [True])
    trap = run(f"{A}.crash", ["boom"])
    tree = run(f"{F}.serial", [2])
    # Still running at the end of the test, however loaded the machine: it ran past 2 minutes on a cluster run.
    running = client.submit(f"{A}.nap", [3_600_000]).execution_id
    finished = [first, second, err, trap, tree]

    dry = purged_json(redis_url, "--dry-run")
    assert dry["dry_run"] is True and (dry["trees"], dry["executions"]) == (5, 7)
    assert [t["execution_id"] for t in dry["purged"]] == finished
    assert [t["outcome"] for t in dry["purged"]] == ["ok", "ok", "err", "trap", "ok"]
    assert dry["purged"][4]["executions"] == 3 and dry["purged"][0]["finished_at"].endswith("Z")
    human = purge(redis_url, "executions", "purge", "--dry-run")
    assert human.returncode == 0 and "would purge 5 trees (7 executions); nothing was removed (--dry-run)" in human.stdout
    assert first in human.stdout and running not in human.stdout
    assert all(client.get(i).status == "finished" for i in finished), "a dry run removed something"

    assert purged_json(redis_url, "--before", "1h")["trees"] == 0  # all finished within the hour
    before = iso(client.get(first).finished_at)  # type: ignore[arg-type]
    only_first = purged_json(redis_url, "--ffqn", f"{A}.double", "--before", before)
    assert [t["execution_id"] for t in only_first["purged"]] == [first]
    assert [t["execution_id"] for t in purged_json(redis_url, "--status", "err")["purged"]] == [err]
    assert [t["execution_id"] for t in purged_json(redis_url, "--status", "failed")["purged"]] == [trap]

    done = purge(redis_url, "executions", "purge", "--before", "0s")
    assert done.returncode == 0, done.stderr
    assert "purged 2 trees (4 executions)" in done.stdout and second in done.stdout and tree in done.stdout
    for execution_id in finished:
        shown = purge(redis_url, "executions", "show", execution_id)
        assert shown.returncode == 3 and "does not exist, or was removed once its retention passed" in shown.stderr
        assert not list(client.redis.scan_iter(match=f"*{{{execution_id}}}*"))
    assert indexes.zcard(client.redis, "executions") == 1 and client.get(running).status != "finished"

    wrong = purge(redis_url, "executions", "purge", "--status", "running")
    assert wrong.returncode == 2 and "only finished executions are purged, not running ones" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    typo = purge(redis_url, "executions", "purge", "--ffqn", "bogus")
    assert typo.returncode == 2 and "'bogus' is not a function name" in typo.stderr
    bad = purge(redis_url, "executions", "purge", "--before", "last week")
    assert bad.returncode == 2 and "--before: 'last week' is neither an ISO 8601 time" in bad.stderr
    assert "Traceback" not in wrong.stderr + bad.stderr
    unknown = purge(redis_url, "executions", "purge", "--dry-run", "--ffqn", f"{A}.nope")
    assert unknown.returncode == 0 and "would purge 0 trees" in unknown.stdout
    assert f"hint: {A}.nope is not a function of any stored deployment revision" in unknown.stderr
    near = purge(redis_url, "executions", "purge", "--dry-run", "--ffqn", f"{A}.napp")
    assert f"did you mean {A}.nap" in near.stderr
    other = "testing:act/basic@9.0.0.double"
    assert "is not a function of any stored deployment revision" in purge(redis_url, "executions", "purge", "--ffqn", other).stderr
    # A deployed function with no finished root (here: the activity nap still runs).
    child = purge(redis_url, "executions", "purge", "--dry-run", "--ffqn", f"{A}.nap")
    assert child.returncode == 0 and f"hint: no finished top-level execution of {A}.nap matched; purge picks" in child.stderr
    # Other filters are named when they may be what excluded the trees; --json keeps stdout JSON, the hint on stderr.
    filtered = purge(redis_url, "--json", "executions", "purge", "--dry-run", "--ffqn", f"{A}.nap", "--status", "err")
    assert json.loads(filtered.stdout)["trees"] == 0
    assert f"hint: no finished top-level execution of {A}.nap matched --before and --status as given" in filtered.stderr
