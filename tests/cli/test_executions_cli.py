"""The `platform call` and `platform executions ...` commands, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dolmen.platform.client import Client
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store import keys
from dolmen.platform.store.connection import connect
from dolmen.platform.store.creates import NewExecution
from dolmen.platform.store.executions import ExecutionStore
from dolmen.platform.store.leases import Lease, Leases
from dolmen.platform.store.records import Failure, Outcome
from tests.support.guests import DATA_DIR
from tests.support.platform import Processes, activity, deploy, workflow


A = "testing:act/basic@1.0.0"
F = "testing:wf/flows@1.0.0"


def platform(redis_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the `platform` program against the test Valkey."""
    return subprocess.run(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--redis", redis_url, "--data-dir", str(DATA_DIR), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_call_prints_the_result_and_exit_codes_follow_it(redis_url: str, processes: Processes) -> None:
    """`platform call` prints the JSON result; ok exits 0, err and failures exit 1, bad input 2 and 3."""
    deploy(redis_url, [activity(), workflow()])
    processes.runner()
    processes.scheduler()
    ok = platform(redis_url, "call", f"{A}.double", "[21]")
    assert ok.returncode == 0 and ok.stdout.strip() == "42", ok.stderr
    by_name = platform(redis_url, "call", f"{A}.maybe", '{"fail": false}')
    assert by_name.returncode == 0 and json.loads(by_name.stdout) == {"ok": 7}
    err = platform(redis_url, "call", f"{A}.maybe", "[true]")
    assert err.returncode == 1 and json.loads(err.stdout) == {"err": "asked to fail"}
    workflow_result = platform(redis_url, "call", f"{F}.serial", "[3]")
    assert workflow_result.returncode == 0 and workflow_result.stdout.strip() == "12"
    unknown = platform(redis_url, "call", f"{A}.triple", "[1]")
    assert unknown.returncode == 3 and "error: function testing:act/basic@1.0.0.triple is not deployed" in unknown.stderr
    bad = platform(redis_url, "call", f"{A}.double", '["x"]')
    assert bad.returncode == 2 and bad.stderr.strip() == 'error: params[0]: expected u64, got "x"'
    malformed = platform(redis_url, "call", f"{A}.double", "[1,")
    assert malformed.returncode == 2 and "PARAMS is not valid JSON" in malformed.stderr
    assert "Traceback" not in unknown.stderr + bad.stderr + malformed.stderr


def test_call_reads_params_from_a_file_or_standard_input(redis_url: str, processes: Processes, tmp_path: Path) -> None:
    """`@FILE` and `-` take params larger than a command line may hold (a single argument stops near 128 KiB)."""
    deploy(redis_url, [activity()])
    processes.runner()
    processes.scheduler()
    text = "é" * 150_000  # 300,000 bytes of UTF-8
    params = tmp_path / "params.json"
    params.write_text(json.dumps([text], ensure_ascii=False), encoding="utf-8")
    from_file = platform(redis_url, "call", f"{A}.shout", f"@{params}")
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout) == len(text)  # `shout` answers the length it was given
    from_stdin = subprocess.run(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--redis", redis_url, "--data-dir", str(DATA_DIR),
         "call", f"{A}.double", "-"],
        input='{"x": 5}', capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert from_stdin.returncode == 0 and from_stdin.stdout.strip() == "10", from_stdin.stderr
    missing = platform(redis_url, "call", f"{A}.double", f"@{tmp_path / 'nope.json'}")
    assert missing.returncode == 2 and "PARAMS: cannot read" in missing.stderr and "nope.json" in missing.stderr


def test_executions_list_show_events_and_cancel(redis_url: str, processes: Processes, client: Client) -> None:
    """A submitted execution can be listed, shown, its events read, and a waiting one cancelled."""
    deploy(redis_url, [activity(), workflow(blocking="unload")])
    processes.runner()
    processes.scheduler()
    submitted = platform(redis_url, "call", "--no-wait", f"{F}.sleepy", "[600000]")
    assert submitted.returncode == 0
    execution_id = submitted.stdout.strip()
    done = platform(redis_url, "--json", "call", f"{A}.double", "[1]")
    assert json.loads(done.stdout)["status"] == "finished"
    listed = json.loads(platform(redis_url, "--json", "executions", "list").stdout)
    assert {e["execution_id"] for e in listed["executions"]} >= {execution_id}
    only = json.loads(platform(redis_url, "--json", "executions", "list", "--ffqn", f"{A}.double").stdout)
    assert [e["ffqn"] for e in only["executions"]] == [f"{A}.double"]
    shown = json.loads(platform(redis_url, "--json", "executions", "show", execution_id).stdout)
    assert shown["execution_id"] == execution_id and shown["ffqn"] == f"{F}.sleepy"
    cancelled = platform(redis_url, "executions", "cancel", execution_id)
    assert cancelled.returncode == 0 and "cancel" in cancelled.stdout
    state = client.wait(execution_id, 60)
    assert state.outcome is not None and state.outcome.failure is not None
    assert state.outcome.failure.kind == "cancelled"
    events = json.loads(platform(redis_url, "--json", "executions", "events", execution_id).stdout)
    assert [e["type"] for e in events][:2] == ["created", "delay_requested"]
    assert "cancel_requested" in [e["type"] for e in events] and events[-1]["type"] == "finished"
    table = platform(redis_url, "executions", "events", execution_id)
    assert "delay_requested" in table.stdout
    # Piped, a table is as wide as its rows: every id stays on one line, ready for grep and cut.
    rows = platform(redis_url, "executions", "list", "--ffqn", f"{F}.sleepy").stdout.splitlines()
    assert any(line.split()[0] == execution_id for line in rows if line.strip()), rows
    result = platform(redis_url, "executions", "result", execution_id)
    assert result.returncode == 1 and "cancelled" in result.stderr
    missing = platform(redis_url, "executions", "show", "E_01JD8X3K5QZ6V2N4M7P9R0S1T2")
    assert missing.returncode == 3 and "does not exist" in missing.stderr


def test_wit_ext_writes_packages_a_workflow_builds_against(tmp_path: Path) -> None:
    """`platform wit ext` writes the host package, the original and the extension package."""
    from tests.support.guests import build_guest

    wasm = build_guest("act-basic", "activities")
    out = platform("redis://unused:1", "wit", "ext", str(wasm), "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert folders == ["dolmen-workflow", "testing-act-1.0.0", "testing-act-1.0.0-dolmen-ext"]
    ext = (tmp_path / "testing-act-1.0.0-dolmen-ext" / "package.wit").read_text()
    assert "package testing:act-dolmen-ext@1.0.0;" in ext
    assert "double-submit: func(join-set: borrow<join-set>, x: u64) -> execution-id;" in ext
    assert "double-await-next: func(join-set: borrow<join-set>) -> result<tuple<execution-id, u64>, await-next-error>;" in ext
    assert "spin-await-next: func(join-set: borrow<join-set>) -> result<execution-id, await-next-error>;" in ext
    assert "fetch-get: func(execution-id: execution-id) -> result<result<string, string>, execution-error>;" in ext


def test_wit_host_writes_the_dolmen_workflow_package(tmp_path: Path) -> None:
    """`platform wit host` prints, or writes into a deps folder, the host package workflows import."""
    printed = platform("redis://unused:1", "wit", "host")
    assert printed.returncode == 0 and "package dolmen:workflow@1.0.0;" in printed.stdout
    written = platform("redis://unused:1", "wit", "host", "-o", str(tmp_path))
    assert written.returncode == 0
    text = (tmp_path / "dolmen-workflow" / "package.wit").read_text()
    assert "new-join-set: func(closing: closing-strategy) -> join-set;" in text
    assert text.strip() == printed.stdout.strip()


def test_events_follow_prints_each_event_as_it_is_appended_and_stops_at_finished(redis_url: str) -> None:
    """`executions events --follow --json` prints one event a line, none for a read that waited in vain, and exits
    once `finished` is appended (or at `--timeout`)."""
    client = connect(redis_url)
    execution_id = ExecutionId.new().value
    ExecutionStore(client).create(NewExecution(id=execution_id, ffqn=f"{F}.serial", kind="workflow", digest="sha256:x", params=[1]))
    args = ["--json", "executions", "events", execution_id, "--follow", "--timeout"]
    # Nothing appended: the one blocking read waits the whole second in vain, and prints nothing for it.
    quiet = platform(redis_url, *args, "1")
    assert quiet.returncode == 0, quiet.stderr
    assert [json.loads(line)["type"] for line in quiet.stdout.splitlines()] == ["created"]
    follower = subprocess.Popen(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--redis", redis_url, "--data-dir", str(DATA_DIR), *args, "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        assert json.loads(follower.stdout.readline())["type"] == "created"
        for type_ in ("delay_requested", "finished"):
            client.xadd(keys.log(execution_id), {"t": type_, "d": "{}", "at": 1})
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
        client.close()
    assert follower.returncode == 0, err
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["delay_requested", "finished"]


def test_list_filters_by_outcome_and_pages_with_the_cursor_it_prints(redis_url: str) -> None:
    """`--outcome failed` lists the failed executions; `--cursor` takes the token a page printed, and a bad one or an
    outcome with an unfinished status exits 2 saying what to pass."""
    client = connect(redis_url)
    try:
        store, leases = ExecutionStore(client), Leases(client)
        failed: list[str] = []
        for i in range(5):
            execution_id = ExecutionId.new().value
            store.create(NewExecution(id=execution_id, ffqn=f"{A}.crash", kind="activity", digest="sha256:x", params=[str(i)]))
            lease = leases.lock(execution_id, "test", 30_000)
            assert isinstance(lease, Lease)
            leases.finish(lease, Outcome(failure=Failure("trap", "boom")) if i % 2 == 0 else Outcome(value=None))
            if i % 2 == 0:
                failed.append(execution_id)
    finally:
        client.close()
    first = platform(redis_url, "--json", "executions", "list", "--outcome", "failed", "--limit", "2")
    page = json.loads(first.stdout)
    assert len(page["executions"]) == 2 and page["next"] and page["previous"] is None
    table = platform(redis_url, "executions", "list", "--outcome", "failed", "--limit", "2").stdout
    assert f"more: --cursor {page['next']}" in table
    rest = json.loads(platform(redis_url, "--json", "executions", "list", "--outcome", "failed", "--cursor", page["next"]).stdout)
    assert sorted(e["execution_id"] for e in page["executions"] + rest["executions"]) == sorted(failed)
    assert rest["next"] is None and rest["previous"]
    bad = platform(redis_url, "executions", "list", "--cursor", "12")
    assert bad.returncode == 2 and "pass the `--cursor` value a listing printed as it is" in bad.stderr
    mixed = platform(redis_url, "executions", "list", "--outcome", "failed", "--status", "running")
    assert mixed.returncode == 2 and "--outcome failed lists finished executions only" in mixed.stderr


def test_events_follow_as_a_table_prints_each_row_as_it_is_appended(redis_url: str) -> None:
    """Without --json, `events --follow` prints a header and each event's line at once, not a table at the end."""
    client = connect(redis_url)
    execution_id = ExecutionId.new().value
    ExecutionStore(client).create(NewExecution(id=execution_id, ffqn=f"{F}.serial", kind="workflow", digest="sha256:x", params=[1]))
    follower = subprocess.Popen(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--redis", redis_url, "--data-dir", str(DATA_DIR),
         "executions", "events", execution_id, "--follow", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        header, created = follower.stdout.readline().split(), follower.stdout.readline().split()
        # Read while the execution is still unfinished: the rows came before any `finished`.
        assert header == ["#", "at", "type", "details"] and created[0] == "0" and created[2] == "created", created
        client.xadd(keys.log(execution_id), {"t": "finished", "d": "{}", "at": 1})
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
        client.close()
    assert follower.returncode == 0, err
    assert [line.split()[2] for line in out.splitlines()] == ["finished"]


def test_list_takes_a_digest_as_it_prints_it_or_any_unique_prefix(redis_url: str) -> None:
    """`--digest` takes the 12 hex digits the list prints (or any unique prefix, `sha256:` optional) as the HTTP API
    does; a prefix of no deployed component exits 3 and one of several exits 2, each saying so."""
    revision = deploy(redis_url, [activity(), workflow()])
    act = next(c.digest for c in revision.components if c.kind == "activity")
    client = Client.connect(redis_url)
    try:
        submitted = client.submit(f"{A}.double", [1]).execution_id
    finally:
        client.close()
    for given in (act[7:19], act[:19], act):
        listed = json.loads(platform(redis_url, "--json", "executions", "list", "--digest", given).stdout)
        assert submitted in [e["execution_id"] for e in listed["executions"]], given
        assert {e["component_digest"] for e in listed["executions"]} == {act}
    upper = json.loads(platform(redis_url, "--json", "executions", "list", "--digest", act[7:19].upper()).stdout)
    assert submitted in [e["execution_id"] for e in upper["executions"]], "hex digits in upper case are the same digits"
    none = platform(redis_url, "executions", "list", "--digest", "0123abcd")
    assert none.returncode == 3 and "no deployed component has digest 0123abcd" in none.stderr
    for not_hex in ("zz", "sha256:xyz", "sha512:" + act[7:19], "", "sha256:"):
        malformed = platform(redis_url, "executions", "list", "--digest", not_hex)
        assert malformed.returncode == 2 and f"{not_hex!r} is not a component digest nor the start of one" in malformed.stderr
    prefixed = json.loads(platform(redis_url, "--json", "executions", "list", "--digest", "SHA256:" + act[7:19].upper()).stdout)
    assert submitted in [e["execution_id"] for e in prefixed["executions"]]
    empty = platform(redis_url, "executions", "list", "--ffqn", "t:none/nothing@1.0.0.here")
    assert empty.returncode == 0 and "no execution matches these filters" in empty.stdout
    assert "no stored deployment revision has the function t:none/nothing@1.0.0.here" in empty.stdout
    # A typo gets what invoking it gets: the close names, as the HTTP API's hint gives them.
    typo = platform(redis_url, "executions", "list", "--ffqn", f"{A}.doubel")
    assert f"no stored deployment revision has the function {A}.doubel; did you mean {A}.double?" in typo.stdout
    as_json = json.loads(platform(redis_url, "--json", "executions", "list", "--ffqn", f"{A}.doubel").stdout)
    assert as_json["executions"] == [] and as_json["hint"].endswith(f"did you mean {A}.double?")
    deployed = platform(redis_url, "executions", "list", "--ffqn", f"{A}.maybe")
    assert "no stored deployment revision" not in deployed.stdout
