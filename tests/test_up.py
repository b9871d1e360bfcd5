"""`platform up` and `platform status`: real supervisor, real Valkey, real child processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from structlog.testing import capture_logs

from dolmen.platform.cli.status import build_status
from dolmen.platform.cli.up import MAX_AUTO_RUNNERS, RunnerCount, auto_runners, gateway_wait_args
from dolmen.platform.config import PlatformFile, pid_alive
from dolmen.platform.embedded import (
    LOWEST_PICKED_PORT,
    EmbeddedValkey,
    choose_port,
    ephemeral_range,
    free_port,
    plan_embedded,
    port_is_free,
    previous_port,
    socket_path_for,
    valkey_dir,
)
from dolmen.platform.errors import ConfigError
from dolmen.platform.store.heartbeats import STALE_AFTER_S, ProcessInfo, read_processes
from dolmen.platform.maxmemory import default_maxmemory
from dolmen.platform.supervisor import (
    ChildSpec,
    Expected,
    RestartPolicy,
    Supervisor,
    describe_exit,
    plan_restart,
    readiness_problems,
    service_specs,
)
from tests.support.polling import wait_for

PLATFORM = str(Path(sys.executable).with_name("platform"))
SERVICES = {"runner", "scheduler", "gateway"}


def clean_env() -> dict[str, str]:
    """The environment without Dolmen settings, so only our flags choose the platform."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DOLMEN_")}


def cli(data_dir: Path, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLATFORM, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
    )


class RunningPlatform:
    """A `platform up` subprocess, with its output in files and helpers to inspect it."""

    def __init__(self, data_dir: Path, port: int, *options: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.stdout_path = data_dir.parent / f"up-{port}-{time.monotonic_ns()}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        self.known_pids: set[int] = set()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [PLATFORM, "--data-dir", str(data_dir), "up", "--port", str(port), *options],
                stdout=out,
                stderr=err,
                env={**clean_env(), **(env or {})},
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def platform_file(self) -> PlatformFile | None:
        found = PlatformFile.read(self.data_dir)
        if found is not None:
            self.known_pids |= set(found.processes.values())
        return found

    def status(self) -> dict[str, Any] | None:
        result = cli(self.data_dir, "status", "--json")
        if result.returncode not in (0, 1):
            return None
        return json.loads(result.stdout)

    def wait_healthy(self, timeout: float = 40.0) -> dict[str, Any]:
        """Wait for the ready line, then check that `platform status --json` calls every service healthy."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"platform up exited {self.proc.returncode}:\n{self.stderr}")
            return "Dolmen is up" in self.stdout

        # Polling the output file is cheap; each `platform status` is a Python start.
        wait_for(ready, timeout=timeout, interval=0.1, what="the ready line of `platform up`")
        status = self.status()
        assert status is not None and status["healthy"], status
        assert {p["kind"] for p in status["processes"] if p["healthy"]} >= SERVICES, status
        self.platform_file()
        return status

    def child_pids(self) -> set[int]:
        found = self.platform_file()
        return set(found.processes.values()) if found else set()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def cleanup(self) -> None:
        """Leave nothing running, whatever happened in the test."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.known_pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def start_platform(tmp_path: Path) -> Iterator[Any]:
    """Start `platform up` subprocesses that are always cleaned up."""
    started: list[RunningPlatform] = []

    def start(data_dir: Path | None = None, port: int | None = None, *options: str) -> RunningPlatform:
        running = RunningPlatform(data_dir or tmp_path / "data", port or free_port(), *options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.cleanup()


def all_gone(pids: set[int]) -> bool:
    return not any(pid_alive(pid) for pid in pids)


# ---------------------------------------------------------------- real processes


@pytest.mark.timeout(120)
def test_up_starts_every_service_and_status_reports_them_healthy(start_platform: Any) -> None:
    """`platform up` runs Valkey, runner, scheduler and gateway, records them, and `status` sees them healthy."""
    up = start_platform()
    status = up.wait_healthy()
    gateway_url = f"http://127.0.0.1:{up.port}"

    found = up.platform_file()
    assert found is not None
    assert found.supervisor_pid == up.proc.pid
    assert found.gateway_url == gateway_url
    assert found.embedded_valkey and found.redis_url.startswith("redis://127.0.0.1:")
    # No --runners: one per CPU (`auto`), so the test sees what a new user's `platform up` starts.
    runners = [f"runner-{i}" for i in range(1, auto_runners() + 1)]
    assert set(found.processes) == {"valkey", *runners, "scheduler", "gateway"}
    assert status["redis"] == {
        "url": found.redis_url, "ok": True, "error": None, "embedded": True, "pid": found.processes["valkey"],
        "cluster": None, "shards": 1,
    }
    assert status["supervisor"]["pid"] == up.proc.pid
    assert status["memory"]["maxmemory"] == default_maxmemory()  # a quarter of this machine
    assert status["memory"]["maxmemory_policy"] == "noeviction"
    supervised = {p["supervised_as"]: p["pid"] for p in status["processes"] if p["kind"] == "runner"}
    assert supervised == {name: found.processes[name] for name in runners}

    ready = [line for line in up.stdout.splitlines() if line.startswith("Dolmen is up")]
    assert len(ready) == 1 and gateway_url in ready[0] and found.redis_url in ready[0]
    assert f", {len(runners)} runner process" in ready[0]
    assert httpx.get(f"{gateway_url}/healthz").status_code == 200

    human = cli(up.data_dir, "status")
    assert human.returncode == 0, human.stderr
    assert "All healthy." in human.stdout and found.redis_url in human.stdout

    # The services talk to the embedded server over its Unix socket, which only this user may open;
    # users keep the TCP URL, and a unix:// URL works for them too.
    sock = socket_path_for(valkey_dir(up.data_dir))
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700
    clients = redis.Redis.from_url(found.redis_url).client_list()
    assert any(str(sock) in c["addr"] for c in clients), clients
    over_socket = cli(up.data_dir, "--redis", f"unix://{sock}", "status", "--json")
    assert over_socket.returncode == 0, over_socket.stderr

    second = cli(up.data_dir, "up", "--port", str(free_port()))
    assert second.returncode == 1
    assert "already running" in second.stderr and str(up.proc.pid) in second.stderr
    assert up.stop() == 0


@pytest.mark.timeout(120)
def test_up_restarts_a_killed_runner_and_logs_it(start_platform: Any) -> None:
    """A runner killed with SIGKILL is restarted under a new pid, and the restart is logged."""
    up = start_platform(None, None, "--runners", "1")
    up.wait_healthy()
    found = up.platform_file()
    assert found is not None
    old_pid = found.processes["runner-1"]

    os.kill(old_pid, signal.SIGKILL)

    def new_runner_pid() -> int | None:
        found = up.platform_file()
        pid = found.processes.get("runner-1") if found else None
        return pid if pid not in (None, old_pid) else None

    new_pid = wait_for(new_runner_pid, timeout=30, interval=0.1, what="a restarted runner-1 in platform.json")
    client = redis.Redis.from_url(found.redis_url)
    try:
        wait_for(
            lambda: any(p.kind == "runner" and p.pid == new_pid and p.healthy for p in read_processes(client)),
            timeout=30,
            interval=0.1,
            what=f"a heartbeat of the new runner (pid {new_pid})",
        )
    finally:
        client.close()
    status = up.status()
    assert status is not None and status["healthy"], status
    assert [p["pid"] for p in status["processes"] if p["kind"] == "runner"] == [new_pid]
    up.platform_file()
    exits = [json.loads(line) for line in up.stderr.splitlines() if '"process exited"' in line]
    assert exits and exits[0]["process"] == "runner-1" and exits[0]["exit_code"] == -9
    assert exits[0]["restart_count"] == 0
    assert any('"process restarted"' in line and '"restart_count": 1' in line for line in up.stderr.splitlines())
    assert up.stop() == 0


@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_process_and_a_restart_keeps_the_data(start_platform: Any, tmp_path: Path) -> None:
    """Ctrl-C stops all children and Valkey, removes platform.json, and a new `up` sees the old data."""
    data_dir = tmp_path / "data"
    first = start_platform(data_dir)
    first.wait_healthy()
    found = first.platform_file()
    assert found is not None
    client = redis.Redis.from_url(found.redis_url)
    client.set("test:survivor", "written in the first run")
    client.close()
    pids = first.child_pids() | {first.proc.pid}

    assert first.stop(signal.SIGINT) == 0
    wait_for(lambda: all_gone(pids), timeout=10, what=f"no process left of {sorted(pids)}")
    assert PlatformFile.read(data_dir) is None
    assert '"platform stopped"' in first.stderr

    second = start_platform(data_dir, first.port)
    second.wait_healthy()
    again = second.platform_file()
    assert again is not None
    assert again.redis_url == found.redis_url  # the previous port was free, so it was reused
    client = redis.Redis.from_url(again.redis_url)
    assert client.get("test:survivor") == b"written in the first run"
    client.close()
    assert second.stop(signal.SIGTERM) == 0


@pytest.mark.timeout(120)
def test_platform_down_stops_it_from_another_terminal(start_platform: Any, tmp_path: Path) -> None:
    """`platform down` stops a running `up` as Ctrl-C does (every process, platform.json removed); then exit 3."""
    up = start_platform(tmp_path / "data")
    up.wait_healthy()
    pids = up.child_pids() | {up.proc.pid}
    down = cli(up.data_dir, "down", timeout=90)
    assert down.returncode == 0, down.stderr
    assert f"stopped the platform of {up.data_dir} (supervisor pid {up.proc.pid})" in down.stdout
    assert up.proc.wait(timeout=30) == 0
    wait_for(lambda: all_gone(pids), timeout=10, what=f"no process left of {sorted(pids)}")
    assert PlatformFile.read(up.data_dir) is None
    again = cli(up.data_dir, "down")
    assert again.returncode == 3 and f"no platform is running for data directory {up.data_dir}" in again.stderr


@pytest.mark.timeout(120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_sigkill_of_the_supervisor_leaves_no_orphans(start_platform: Any) -> None:
    """Even a SIGKILLed supervisor takes its children and Valkey with it, and status then says nothing runs."""
    up = start_platform()
    up.wait_healthy()
    pids = up.child_pids()
    assert len(pids) == 3 + auto_runners()  # Valkey, the scheduler, the gateway and the runners

    up.proc.kill()
    up.proc.wait()
    wait_for(lambda: all_gone(pids), timeout=10, what=f"no orphan left of {sorted(pids)}")

    stale = cli(up.data_dir, "status")
    assert stale.returncode == 3
    assert "has exited" in stale.stderr and "platform up" in stale.stderr


@pytest.mark.timeout(120)
def test_up_runs_valkey_with_maxmemory_and_noeviction(start_platform: Any) -> None:
    """`--maxmemory` reaches the embedded Valkey (CONFIG GET), with the noeviction policy; `status` shows the use."""
    up = start_platform(None, None, "--maxmemory", "64MiB")
    status = up.wait_healthy()
    found = up.platform_file()
    assert found is not None
    client = redis.Redis.from_url(found.redis_url, decode_responses=True)
    try:
        assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024**2)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        client.close()
    memory = status["memory"]
    assert memory["maxmemory"] == 64 * 1024**2 and 0 < memory["used_percent"] < 100 and not memory["full"]
    ready = next(line for line in up.stdout.splitlines() if line.startswith("Dolmen is up"))
    assert "maxmemory 64.0 MiB" in ready
    human = cli(up.data_dir, "status")
    assert human.returncode == 0 and "used of maxmemory 64.0 MiB" in human.stdout, human.stdout
    assert "Retention 0 finished trees kept (retention 7d unless the deployment sets one)" in human.stdout, human.stdout
    assert status["retention"] == {"finished_trees_kept": 0, "next_removal_at_ms": None, "default_retention_ms": 7 * 86_400_000}
    assert up.stop() == 0


def test_status_without_a_platform_exits_3_naming_platform_up(tmp_path: Path) -> None:
    """`platform status` on a data directory where nothing runs exits 3 and says how to start one."""
    result = cli(tmp_path / "nothing-here", "status", "--json")
    assert result.returncode == 3
    assert "no platform is running" in result.stderr and "`platform up`" in result.stderr
    assert result.stdout == ""


def test_up_on_a_busy_port_fails_naming_the_port_and_the_fix(tmp_path: Path) -> None:
    """`platform up --port P` with P taken fails at once, naming P and the --port option, and starts nothing."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli(tmp_path / "data", "up", "--port", str(port), timeout=15)
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "--port" in result.stderr
    assert not (tmp_path / "data" / "platform.json").exists()


# ---------------------------------------------------------------- decisions and small parts


@pytest.mark.parametrize(("cpus", "expected"), [(1, 1), (2, 2), (6, 6), (64, MAX_AUTO_RUNNERS)])
def test_auto_runners_is_one_per_usable_cpu_up_to_the_cap(monkeypatch: pytest.MonkeyPatch, cpus: int, expected: int) -> None:
    """`--runners auto` counts the CPUs this process may run on (its affinity), not the machine's."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert auto_runners() == expected
    assert RunnerCount().convert("auto", None, None) == expected
    assert RunnerCount().convert(" AUTO ", None, None) == expected


@pytest.mark.parametrize("value", ["0", "-2", "lots", "", "1.5", "3x", "²"])
def test_a_bad_runner_count_exits_2_naming_both_accepted_forms(value: str, tmp_path: Path) -> None:
    """`--runners` takes a whole number >= 1 or `auto`; anything else is refused before anything starts."""
    result = cli(tmp_path / "data", "up", "--runners", value)
    assert result.returncode == 2, result.stderr
    assert f"{value!r} is not a number of runner processes" in result.stderr
    assert "a whole number of at least 1, or 'auto'" in result.stderr
    assert not (tmp_path / "data" / "platform.json").exists()


def test_restart_backoff_doubles_for_quick_deaths_and_is_capped() -> None:
    """Each quick death doubles the restart delay up to the cap."""
    policy = RestartPolicy(initial_delay_s=0.5, factor=2.0, max_delay_s=3.0, healthy_after_s=30.0)
    failures, delays = 0, []
    for _ in range(5):
        plan = plan_restart(policy, failures, uptime_s=1.0)
        failures = plan.consecutive_failures
        delays.append(plan.delay_s)
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert failures == 5


def test_restart_backoff_forgives_a_child_that_ran_long_enough() -> None:
    """A child that ran past `healthy_after_s` is restarted after the initial delay again."""
    policy = RestartPolicy(initial_delay_s=0.5, healthy_after_s=30.0)
    plan = plan_restart(policy, consecutive_failures=7, uptime_s=45.0)
    assert plan.consecutive_failures == 1
    assert plan.delay_s == 0.5


def test_exit_descriptions_name_the_signal() -> None:
    """Exit statuses read as `exit code N` or `killed by SIGNAME`."""
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "killed by SIGKILL"


def test_supervisor_restarts_a_dying_child_and_logs_its_exit() -> None:
    """A child that exits is logged with its name, exit code and restart count, then restarted."""
    policy = RestartPolicy(initial_delay_s=0.0)
    spec = ChildSpec("quitter", "test", (sys.executable, "-c", "raise SystemExit(3)"))
    supervisor = Supervisor(policy)
    with capture_logs() as logs:
        first = supervisor.add(spec)
        wait_for(lambda: supervisor.tick() and supervisor.pid("quitter") not in (None, first), what="a restart")
        supervisor.stop(timeout_s=5)
    exited = [e for e in logs if e["event"] == "process exited"]
    assert exited[0]["process"] == "quitter" and exited[0]["exit_code"] == 3 and exited[0]["restart_count"] == 0
    assert any(e["event"] == "process restarted" and e["restart_count"] >= 1 for e in logs)
    assert supervisor.pids() == {}


def beat(kind: str, pid: int, host: str = "here", last_seen: float = 1000.0) -> ProcessInfo:
    return ProcessInfo(f"{kind}:{host}:{pid}", kind, pid, host, 900.0, last_seen, {})


def test_readiness_waits_for_every_expected_heartbeat_on_this_host() -> None:
    """The platform is ready only when each expected service reported from this host with its own pid."""
    expected = [Expected("runner-1", "runner", 11), Expected("scheduler", "scheduler", 12)]
    beats = [beat("runner", 11), beat("scheduler", 12, host="elsewhere")]
    problems = readiness_problems(expected, beats, hostname="here", redis_error=None, gateway_error=None)
    assert problems == ["scheduler (pid 12) has not reported a heartbeat"]
    beats.append(beat("scheduler", 12))
    assert readiness_problems(expected, beats, hostname="here", redis_error=None, gateway_error=None) == []
    down = readiness_problems(expected, beats, hostname="here", redis_error=None, gateway_error="503")
    assert down == ["the gateway is not healthy (503)"]


def test_status_flags_stale_and_missing_processes() -> None:
    """Status reports a stale heartbeat and a supervised service that does not report as problems."""
    running = PlatformFile("redis://x:1", "http://g", 10, {"valkey": 1, "runner-1": 11, "scheduler": 12}, True)
    now = 1000.0
    beats = [beat("runner", 11, last_seen=now - 1), beat("runner", 99, last_seen=now - STALE_AFTER_S - 5)]
    status = build_status(
        data_dir=Path("/d"), running=running, redis_url="redis://x:1", redis_error=None,
        gateway_url="http://g", gateway_error=None, beats=beats, now=now, hostname="here",
    )
    assert len(status.problems) == 2
    assert "runner:here:99 has not reported for 15s" in status.problems[0]
    assert status.problems[1].startswith("scheduler (pid 12) is not reporting")
    data = status.to_json()
    assert data["healthy"] is False
    assert [p["supervised_as"] for p in data["processes"]] == ["runner-1", None]


def test_service_specs_run_each_service_as_its_own_cli_process() -> None:
    """Each runner, the scheduler and the gateway run `python -m dolmen.platform.cli.main` with the platform's settings."""
    specs = service_specs("redis://h:1", Path("/d"), runners=2, host="127.0.0.1", port=8401)
    assert [s.name for s in specs] == ["runner-1", "runner-2", "scheduler", "gateway"]
    gateway = specs[-1].argv
    assert gateway[0] == sys.executable and "dolmen.platform.cli.main" in gateway
    # The URL may hold a password: in the environment, not on a command line anyone may read.
    assert "--redis" not in gateway and all(spec.env == (("DOLMEN_REDIS_URL", "redis://h:1"),) for spec in specs)
    assert gateway[gateway.index("--log-format") + 1] == "json"
    assert gateway[-5:] == ("gateway", "--host", "127.0.0.1", "--port", "8401")


def test_up_passes_its_wait_options_to_the_gateway_only_and_checks_them_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """`up --wait-replicas/--wait-timeout-ms` reach the gateway's command line; bad values, flag or environment, stop `up`."""
    args = gateway_wait_args(2, 500)
    assert args == ("--wait-replicas", "2", "--wait-timeout-ms", "500") and gateway_wait_args(None, None) == ()
    specs = service_specs("redis://h:1", Path("/d"), runners=1, host="127.0.0.1", port=8401, gateway_args=args)
    assert specs[-1].argv[-4:] == args and not any("--wait-replicas" in spec.argv for spec in specs[:-1])
    with pytest.raises(ConfigError, match=r"--wait-timeout-ms must be 1 to 10000 ms, got 20000"):
        gateway_wait_args(1, 20_000)
    monkeypatch.setenv("DOLMEN_WAIT_TIMEOUT_MS", "0")
    with pytest.raises(ConfigError, match=r"DOLMEN_WAIT_TIMEOUT_MS='0' is not valid"):
        gateway_wait_args(None, None)


def test_embedded_valkey_config_is_append_only_on_loopback(tmp_path: Path) -> None:
    """The embedded Valkey persists with an fsync-every-second append-only file and listens on 127.0.0.1."""
    server = EmbeddedValkey(tmp_path / "valkey dir", 6390)
    server.write_config()
    text = server.config_path.read_text()
    for line in ("bind 127.0.0.1", "port 6390", "appendonly yes", "appendfsync everysec"):
        assert line in text.splitlines()
    assert f'dir "{tmp_path}/valkey dir"' in text
    assert previous_port(server.directory) == 6390
    assert server.child_spec(Path("/bin/valkey-server")).stop_stage > 0  # stopped after the services
    always = EmbeddedValkey(tmp_path / "always", 6391, fsync="always")
    always.write_config()
    assert "appendfsync always" in always.config_path.read_text().splitlines()


def test_embedded_valkey_listens_on_a_unix_socket_whose_path_fits(tmp_path: Path) -> None:
    """The socket is in the server's directory, or in the temp dir when that path is too long for a socket."""
    server = EmbeddedValkey(tmp_path / "valkey dir", 6390)
    assert server.socket_path == (tmp_path / "valkey dir" / "valkey.sock").absolute()
    assert server.local_url == f"unix://{server.socket_path}"
    lines = server.render_config().splitlines()
    assert f'unixsocket "{server.socket_path}"' in lines and "unixsocketperm 700" in lines
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    far = EmbeddedValkey(deep, 6391)
    assert far.socket_path.parent == Path(tempfile.gettempdir()) and far.socket_path.name.startswith("dolmen-")
    assert len(str(far.socket_path)) <= 103
    assert far.socket_path == EmbeddedValkey(deep, 6392).socket_path != EmbeddedValkey(deep / "x", 6391).socket_path


def test_a_free_port_is_picked_below_the_kernels_ephemeral_range() -> None:
    """Outgoing connections take their local ports from the ephemeral range: a port picked there may be taken
    before the embedded Valkey binds it."""
    low = ephemeral_range()[0]
    ports = {free_port() for _ in range(20)}
    assert all(LOWEST_PICKED_PORT <= port < low for port in ports), ports
    assert len(ports) > 1, "picked at random, so two servers started at once rarely meet"
    for port in ports:
        assert port_is_free("127.0.0.1", port)


def test_embedded_valkey_reuses_its_previous_port_only_when_free(tmp_path: Path) -> None:
    """The previous port is kept when free; a busy one is replaced by another free port."""
    port = free_port()
    EmbeddedValkey(tmp_path / "valkey", port).write_config()
    assert plan_embedded(tmp_path).port == port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert plan_embedded(tmp_path).port != port
        assert choose_port("127.0.0.1", [port, None]) != port
