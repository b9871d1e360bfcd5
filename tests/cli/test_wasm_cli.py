"""`platform wit` and `platform run` on real component files, run as the user runs them (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.guests import DATA_DIR, TESTS, build_guest
from tests.support.servers import HelloServer

FAULTS = "test:faults/faults@1.0.0"


def platform(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run the `platform` CLI with the shared test data directory (compiled components are cached there)."""
    return subprocess.run(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--data-dir", str(DATA_DIR), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=TESTS.parent,
    )


@pytest.fixture(scope="module")
def echo_wasm() -> str:
    """Path of the echo component."""
    return str(build_guest("echo", "echo"))


@pytest.fixture(scope="module")
def faults_wasm() -> str:
    """Path of the faults component."""
    return str(build_guest("faults", "faulty"))


@pytest.fixture(scope="module")
def greeter_v1_wasm() -> str:
    """Path of test:greeter@1.0.0."""
    return str(build_guest("greeter-v1", "greeter"))


@pytest.fixture(scope="module")
def greeter_v2_wasm() -> str:
    """Path of test:greeter@2.0.0."""
    return str(build_guest("greeter-v2", "greeter"))


def last_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The `error: ...` line the CLI printed last."""
    return [line for line in proc.stderr.splitlines() if line.startswith("error: ")][-1]


def test_wit_prints_signatures_resources_and_imports(greeter_v1_wasm: str) -> None:
    """`platform wit` lists invocable ffqns with signatures, the ones it cannot call and why, imports, and WIT."""
    proc = platform("wit", greeter_v1_wasm)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("// component sha256:")
    expected = [
        "// exported functions (call one with `platform run FILE.wasm FFQN PARAMS`):",
        "//   test:greeter/greet@1.0.0.greet: func(name: string) -> string",
        "//   test:greeter/greet@1.0.0.compose: func(name: string, times: u8) -> greeting",
        "//   test:greeter/counters@1.0.0.count-to: func(n: u32) -> list<u32>",
        "// not invocable:",
        "//   test:greeter/counters@1.0.0.make-counter: result: it uses the resource handle counter, "
        "which cannot be sent as JSON",
        "//   version: a world-level function, which has no ffqn",
        "// imports:",
        "//   wasi:cli/environment@0.2.9",
        "package test:greeter@1.0.0;",
        "interface greet {",
        "  record greeting {",
        "  compose: func(name: string, times: u8) -> greeting;",
        "  resource counter {",
        "    constructor(start: u32);",
        "    next: func() -> u32;",
        "  peek: func(c: borrow<counter>) -> u32;",
    ]
    lines = out.splitlines()
    for line in expected:
        assert line in lines, line
    assert out.count("package test:greeter@1.0.0;") == 1


def test_wit_lists_custom_imports(greeter_v2_wasm: str) -> None:
    """Imports of the component's own interfaces are listed with their versions."""
    proc = platform("wit", greeter_v2_wasm)
    assert proc.returncode == 0, proc.stderr
    assert "//   test:greeter/audit@2.0.0" in proc.stdout.splitlines()
    assert "//   test:greeter/greet@2.0.0.greet: func(name: string, excited: bool) -> string" in proc.stdout


def test_wit_json_is_machine_readable(echo_wasm: str, greeter_v1_wasm: str) -> None:
    """`platform --json wit` describes every function with its ffqn, typed params, result and invocability."""
    proc = platform("--json", "wit", echo_wasm)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["digest"].startswith("sha256:")
    functions = {f["ffqn"]: f for f in data["functions"]}
    person = functions["test:echo/compound.echo-person"]
    assert person["signature"] == "func(v: person) -> person"
    assert person["invocable"] is True
    assert person["params"][0]["name"] == "v" and person["params"][0]["wit"] == "person"
    assert person["params"][0]["type"]["kind"] == "record"
    assert [f[0] for f in person["params"][0]["type"]["fields"]] == ["first-name", "last-name", "age", "nick-names", "home"]
    assert person["result_wit"] == "person"
    assert "wasi:io/streams@0.2.9" in {i["name"] for i in data["imports"]}
    assert {e["name"] for e in data["exports"]} == {"test:echo/prims", "test:echo/compound", "test:echo/choices"}

    data = json.loads(platform("--json", "wit", greeter_v1_wasm).stdout)
    functions = {f["ffqn"]: f for f in data["functions"]}
    assert functions["test:greeter/counters@1.0.0.peek"]["invocable"] is False
    assert functions["test:greeter/counters@1.0.0.peek"]["reason"].startswith("parameter 'c': it uses the resource")
    assert data["world_functions"] == [{"name": "version", "signature": "func() -> string"}]


def test_wit_on_bad_files(tmp_path: Path) -> None:
    """A missing file exits 3 and a file that is not wasm exits 1, each with a one-line message."""
    missing = platform("wit", str(tmp_path / "nope.wasm"))
    assert missing.returncode == 3
    assert last_error_line(missing) == f"error: component file '{tmp_path / 'nope.wasm'}' does not exist"
    text = tmp_path / "notes.wasm"
    text.write_text("hello")
    bad = platform("wit", str(text))
    assert bad.returncode == 1
    assert last_error_line(bad).startswith("error: this file is not a WebAssembly binary")


def test_run_prints_the_json_result(echo_wasm: str) -> None:
    """`platform run` calls the function once and prints its JSON result; params may be given by name."""
    proc = platform("run", echo_wasm, "test:echo/prims.mix", '{"label": "été", "count": 3}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '[3, "été", null]\n'
    proc = platform("--json", "run", echo_wasm, "test:echo/choices.echo-result-bool", '[{"err": true}]')
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"result": {"err": True}}


def test_run_err_result_exits_1(faults_wasm: str) -> None:
    """An `err` result is printed like any result, with exit status 1."""
    ok = platform("run", faults_wasm, f"{FAULTS}.divide", "[7, 2]")
    assert (ok.returncode, ok.stdout) == (0, '{"ok": 3}\n')
    err = platform("run", faults_wasm, f"{FAULTS}.divide", "[1, 0]")
    assert (err.returncode, err.stdout) == (1, '{"err": "cannot divide 1 by zero"}\n')


def test_run_unknown_or_malformed_function(faults_wasm: str) -> None:
    """An ffqn the file does not export exits 3 listing what it exports; a malformed one exits 2."""
    unknown = platform("run", faults_wasm, f"{FAULTS}.nope", "[]")
    assert unknown.returncode == 3
    message = last_error_line(unknown)
    assert message.startswith(f"error: {faults_wasm} does not export {FAULTS}.nope; it exports: ")
    assert f"{FAULTS}.divide" in message
    other_version = platform("run", faults_wasm, "test:faults/faults@2.0.0.divide", "[1, 2]")
    assert other_version.returncode == 3
    malformed = platform("run", faults_wasm, "faults.divide", "[1, 2]")
    assert malformed.returncode == 2
    assert last_error_line(malformed).startswith("error: 'faults.divide' is not a function name")


@pytest.mark.parametrize(
    ("ffqn", "params", "message"),
    [
        ("test:echo/prims.echo-u8", "[300]", "error: params[0]: 300 does not fit in u8 (0..255)"),
        ("test:echo/prims.mix", '{"count": 1}', "error: params.label: missing parameter of type string"),
        (
            "test:echo/compound.echo-person",
            '[{"first-name": "A", "age": 1, "last-name": 12}]',
            "error: params[0].last-name: expected option<string>, got 12",
        ),
    ],
)
def test_run_bad_params_exit_2_with_the_path(echo_wasm: str, ffqn: str, params: str, message: str) -> None:
    """Bad params exit 2 with one line naming the path of the bad value, and no traceback."""
    proc = platform("run", echo_wasm, ffqn, params)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert last_error_line(proc) == message
    assert "Traceback" not in proc.stderr


def test_run_invalid_json_exits_2(echo_wasm: str) -> None:
    """PARAMS that are not JSON exit 2 with a hint on the expected form."""
    proc = platform("run", echo_wasm, "test:echo/prims.echo-u8", "[1,")
    assert proc.returncode == 2
    assert last_error_line(proc).startswith("error: PARAMS is not valid JSON")


def test_run_resource_function_is_refused(greeter_v1_wasm: str) -> None:
    """A function taking a resource handle cannot be called with JSON, and says why."""
    proc = platform("run", greeter_v1_wasm, "test:greeter/counters@1.0.0.peek", "[1]")
    assert proc.returncode == 2
    assert last_error_line(proc) == (
        "error: test:greeter/counters@1.0.0.peek cannot be called with JSON: parameter 'c': "
        "it uses the resource handle borrow<counter>, which cannot be sent as JSON"
    )


def test_run_trap_exits_1_with_a_readable_message(faults_wasm: str) -> None:
    """A trapping guest exits 1 with one readable error line and no host traceback."""
    proc = platform("run", faults_wasm, f"{FAULTS}.fail", '["boom"]')
    assert proc.returncode == 1, proc.stderr
    assert last_error_line(proc) == (
        "error: trap: the guest panicked or aborted (wasm `unreachable` executed) in "
        "test:faults/faults@1.0.0#fail; the guest raised RuntimeError: boom"
    )
    assert "/dolmen/" not in proc.stderr and "platform/wasm" not in proc.stderr
    assert proc.stdout == ""


def test_run_timeout_stops_an_infinite_loop(faults_wasm: str) -> None:
    """--timeout interrupts a guest that never returns, and the command exits 1 promptly."""
    start = time.monotonic()
    proc = platform("run", faults_wasm, f"{FAULTS}.spin", "[]", "--timeout", "300")
    elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert last_error_line(proc).startswith("error: timeout: the guest ran past its time limit of 300 ms")
    assert elapsed < 15


@pytest.mark.parametrize(("timeout", "ms"), [("300ms", 300), ("1s", 1000)])
def test_run_timeout_takes_a_duration_as_a_deployment_writes_it(faults_wasm: str, timeout: str, ms: int) -> None:
    proc = platform("run", faults_wasm, f"{FAULTS}.spin", "[]", "--timeout", timeout)
    assert last_error_line(proc).startswith(f"error: timeout: the guest ran past its time limit of {ms} ms")
    assert "raise --timeout if the work is legitimately slow" in last_error_line(proc)


@pytest.mark.parametrize(("timeout", "message"), [("0", "must be at least 1ms"), ("soon", "'soon' is not a duration")])
def test_run_refuses_a_timeout_that_is_not_a_duration(faults_wasm: str, timeout: str, message: str) -> None:
    proc = platform("run", faults_wasm, f"{FAULTS}.spin", "[]", "--timeout", timeout)
    assert proc.returncode == 2 and message in proc.stderr


def test_run_passes_env_and_shows_guest_output(faults_wasm: str) -> None:
    """--env grants a variable; guest output goes to stderr so stdout holds only the result."""
    proc = platform("run", faults_wasm, f"{FAULTS}.env", '["TOKEN"]', "--env", "TOKEN=abc")
    assert (proc.returncode, proc.stdout) == (0, '"abc"\n')
    chatty = platform("--json", "run", faults_wasm, f"{FAULTS}.chatty", '{"text": "hi"}')
    assert chatty.returncode == 0
    assert json.loads(chatty.stdout) == {"result": "HI", "stdout": "out: hi\n", "stderr": "err: hi\n"}


def test_run_allows_outgoing_requests_only_where_allow_host_says() -> None:
    """Without --allow-host a request to a loopback server is refused naming the option; with it, it is fetched."""
    act = str(build_guest("act-basic", "activities"))
    fetch = "testing:act/basic@1.0.0.fetch"
    server = HelloServer()
    try:
        refused = platform("run", act, fetch, json.dumps([server.url]))
        assert refused.returncode == 1  # act-basic returns the refused request as `err`
        assert "HttpRequestDenied" in refused.stdout
        refusal = (
            f"refused an outgoing request to 127.0.0.1:{server.port} (a loopback address): "
            f"pass --allow-host 127.0.0.1:{server.port} to allow it"
        )
        assert f"[dolmen] {refusal}\n" in refused.stderr
        assert server.served == []
        allowed = platform("run", act, fetch, json.dumps([server.url]), "--allow-host", "api.example.com", "--allow-host", "127.0.0.1:*")
        assert (allowed.returncode, allowed.stdout) == (0, '{"ok": "hello"}\n'), allowed.stderr
        assert server.served == ["/page"]
    finally:
        server.close()
    bad = platform("run", act, fetch, '["http://x/"]', "--allow-host", "https://api.example.com")
    assert bad.returncode == 2
    assert last_error_line(bad) == (
        "error: --allow-host 'https://api.example.com' has a scheme; write the host alone, e.g. api.example.com "
        "(a pattern covers http and https)"
    )
