"""Supervision of the processes `platform up` runs: spawn, restart with backoff, stop.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches
only the supervisor, which then stops the children in order (services first,
the embedded Valkey last). On Linux each child also asks the kernel to signal
it when the supervisor dies (`PR_SET_PDEATHSIG`), so even a SIGKILL of the
supervisor leaves no orphan behind.

The restart decision is a pure function (`plan_restart`); `Supervisor` only
performs what it decides. The last section says what `platform up` runs
(`service_specs`) and when the platform counts as ready (`readiness_problems`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import structlog

from .backoff import Backoff
from .config import ENV_REDIS
from .errors import ConfigError
from .store.heartbeats import ProcessInfo

log = structlog.get_logger("dolmen.supervisor")

_PR_SET_PDEATHSIG = 1

CLI_MODULE = "dolmen.platform.cli.main"
# `python -m` on a module that its own package imports makes runpy warn at every
# child start; harmless here (the module only defines the CLI), so keep logs clean.
_RUNPY_FILTER = f"ignore:'{CLI_MODULE}' found in sys.modules:RuntimeWarning"


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised process.

    `stop_stage` orders the shutdown: lower stages stop first, and a stage is
    fully stopped before the next one is signalled. `death_signal` is what the
    kernel sends the child if the supervisor dies (Linux only). `log_file`
    receives the child's stdout and stderr; None inherits the supervisor's.
    `env` is added to the supervisor's environment for the child.
    """

    name: str
    kind: str
    argv: tuple[str, ...]
    stop_stage: int = 0
    death_signal: int = signal.SIGKILL
    log_file: Path | None = None
    cwd: Path | None = None
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Exponential backoff for children that keep dying.

    A child that ran for at least `healthy_after_s` before dying is restarted
    after `initial_delay_s` again: its earlier failures are forgiven.
    """

    initial_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    healthy_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class RestartPlan:
    """What to do about a child that exited: wait `delay_s`, then start it again."""

    consecutive_failures: int
    delay_s: float


def plan_restart(policy: RestartPolicy, consecutive_failures: int, uptime_s: float) -> RestartPlan:
    """Decide when to restart a child that exited after `uptime_s` seconds.

    `consecutive_failures` counts the quick deaths before this one.
    """
    failures = 1 if uptime_s >= policy.healthy_after_s else consecutive_failures + 1
    backoff = Backoff(policy.initial_delay_s, policy.max_delay_s, factor=policy.factor)
    return RestartPlan(consecutive_failures=failures, delay_s=backoff.delay(failures))


def describe_exit(returncode: int) -> str:
    """`exit code 3` or `killed by SIGKILL`, for logs and error messages."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Resolved once in the parent: the code that runs between fork and exec must
# not load libraries or allocate much.
_prctl = _load_prctl()


def _child_setup(death_signal: int, parent_pid: int) -> Callable[[], None]:
    def setup() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
            # The parent may have died before prctl took effect: then nobody
            # would ever send the signal, so act on it now.
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), death_signal)

    return setup


def spawn(spec: ChildSpec) -> subprocess.Popen[bytes]:
    """Start `spec` in its own process group, tied to this process's life where the OS allows."""
    out: IO[bytes] | None = None
    if spec.log_file is not None:
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        out = open(spec.log_file, "ab")  # noqa: SIM115 - the child keeps its own copy of the descriptor
    try:
        return subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            cwd=spec.cwd,
            env={**os.environ, **dict(spec.env)} if spec.env else None,
            process_group=0,
            preexec_fn=_child_setup(spec.death_signal, os.getpid()),
            close_fds=True,
        )
    except OSError as exc:
        raise ConfigError(f"cannot start {spec.name} ({spec.argv[0]}): {exc}") from None
    finally:
        if out is not None:
            out.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the child's whole process group (the child and anything it started)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class StopSignals:
    """First SIGINT/SIGTERM/SIGHUP: stop cleanly. A second one: stop without waiting (`force`)."""

    stop: threading.Event = field(default_factory=threading.Event)
    force: threading.Event = field(default_factory=threading.Event)

    def install(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.force.set()
        self.stop.set()


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    consecutive_failures: int = 0
    restart_at: float | None = None
    last_exit: str | None = None


class Supervisor:
    """Keeps a set of child processes running until `stop` is called.

    `on_exit(spec, pid, returncode)` runs after a child is reaped, before its
    restart is scheduled (e.g. to forget its heartbeat). Drive it by calling
    `tick()` regularly from the thread that created it: on Linux the death
    signal is tied to the spawning thread.
    """

    def __init__(
        self,
        policy: RestartPolicy | None = None,
        on_exit: Callable[[ChildSpec, int, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._on_exit = on_exit
        self._clock = clock
        self._children: dict[str, _Child] = {}

    def add(self, spec: ChildSpec) -> int:
        """Start a new child now; returns its pid."""
        if spec.name in self._children:
            raise ValueError(f"a child named {spec.name!r} is already supervised")
        child = _Child(spec)
        self._children[spec.name] = child
        pid = self._start(child)
        log.info("process started", process=spec.name, pid=pid)
        return pid

    def _start(self, child: _Child) -> int:
        proc = spawn(child.spec)
        child.proc = proc
        child.started_at = self._clock()
        child.restart_at = None
        return proc.pid

    def pid(self, name: str) -> int | None:
        """The pid of a running child, None while it waits for a restart."""
        child = self._children.get(name)
        return child.proc.pid if child is not None and child.proc is not None else None

    def pids(self) -> dict[str, int]:
        """Name to pid of every child that runs now."""
        return {name: c.proc.pid for name, c in self._children.items() if c.proc is not None}

    def specs(self) -> list[ChildSpec]:
        return [c.spec for c in self._children.values()]

    def last_exit(self, name: str) -> str | None:
        """How the child last ended (`exit code 1`, `killed by SIGKILL`), with its restart count."""
        child = self._children.get(name)
        if child is None or child.last_exit is None:
            return None
        return f"{child.last_exit}, restarted {child.restarts} times"

    def tick(self) -> bool:
        """Reap dead children and start those whose backoff has elapsed; True if any pid changed."""
        changed = False
        now = self._clock()
        for child in self._children.values():
            if child.proc is not None:
                returncode = child.proc.poll()
                if returncode is None:
                    continue
                pid = child.proc.pid
                child.proc = None
                changed = True
                plan = plan_restart(self.policy, child.consecutive_failures, now - child.started_at)
                child.consecutive_failures = plan.consecutive_failures
                child.restart_at = now + plan.delay_s
                child.last_exit = describe_exit(returncode)
                log.warning(
                    "process exited",
                    process=child.spec.name,
                    pid=pid,
                    exit_code=returncode,
                    exit=child.last_exit,
                    restart_count=child.restarts,
                    restart_in_s=round(plan.delay_s, 2),
                )
                if self._on_exit is not None:
                    self._on_exit(child.spec, pid, returncode)
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                pid = self._start(child)
                child.restarts += 1
                changed = True
                log.info("process restarted", process=child.spec.name, pid=pid, restart_count=child.restarts)
        return changed

    def run_until(
        self,
        check: Callable[[], bool],
        stop: threading.Event,
        deadline: float | None = None,
        on_change: Callable[[], None] | None = None,
        interval_s: float = 0.2,
    ) -> bool:
        """Tick until `check()` holds (True), or `stop` is set or the monotonic `deadline` passes (False).

        `on_change` runs whenever a pid changed (a child died or restarted).
        """
        while not stop.is_set():
            if self.tick() and on_change is not None:
                on_change()
            if check():
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            stop.wait(interval_s)
        return False

    def stop(self, timeout_s: float = 10.0, force: threading.Event | None = None) -> None:
        """Stop every child: SIGTERM stage by stage, SIGKILL whatever outlives `timeout_s`.

        Setting `force` (e.g. a second Ctrl-C) skips the rest of the grace period.
        """
        for child in self._children.values():
            child.restart_at = None  # nothing restarts from here on
        for stage in sorted({c.spec.stop_stage for c in self._children.values()}):
            group = [c for c in self._children.values() if c.spec.stop_stage == stage]
            self._stop_group(group, timeout_s, force)

    def _stop_group(self, group: Sequence[_Child], timeout_s: float, force: threading.Event | None) -> None:
        running = [c for c in group if c.proc is not None and c.proc.poll() is None]
        for child in running:
            log.info("stopping process", process=child.spec.name, pid=child.proc.pid if child.proc else None)
            if child.proc is not None:
                _signal_group(child.proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while any(c.proc is not None and c.proc.poll() is None for c in running):
            if time.monotonic() >= deadline or (force is not None and force.is_set()):
                break
            time.sleep(0.05)
        for child in group:
            proc = child.proc
            if proc is None:
                continue
            if proc.poll() is None:
                log.warning("process did not stop in time, killing it", process=child.spec.name, pid=proc.pid)
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            # Sweep anything the child started and left in its group.
            _signal_group(proc, signal.SIGKILL)
            child.proc = None


# ---------------------------------------------------------------- what `platform up` runs


@dataclass(frozen=True, slots=True)
class Expected:
    """A supervised service that must report a heartbeat before the platform is ready."""

    name: str
    kind: str
    pid: int


def gateway_url_for(host: str, port: int) -> str:
    """The URL clients use to reach a gateway listening on host:port."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def cli_argv(data_dir: Path, debug: bool, *command: str) -> tuple[str, ...]:
    """The command line of a child service: this Python, this package's CLI, JSON logs.

    The Redis URL is not on it but in the child's environment (`redis_env`):
    a command line is anyone's to read (ps), and the URL may hold a password.
    """
    argv = [sys.executable, "-W", _RUNPY_FILTER, "-m", CLI_MODULE]
    argv += ["--data-dir", str(data_dir), "--log-format", "json"]
    if debug:
        argv.append("--debug")
    return (*argv, *command)


def service_specs(
    redis_url: str,
    data_dir: Path,
    *,
    runners: int,
    host: str,
    port: int,
    debug: bool = False,
    gateway_args: Sequence[str] = (),
) -> list[ChildSpec]:
    """Runners, the scheduler and the gateway (with `gateway_args` more options), each its own process."""
    env = ((ENV_REDIS, redis_url),)
    specs = [
        ChildSpec(f"runner-{i}", "runner", cli_argv(data_dir, debug, "runner"), env=env) for i in range(1, runners + 1)
    ]
    specs.append(ChildSpec("scheduler", "scheduler", cli_argv(data_dir, debug, "scheduler"), env=env))
    specs.append(
        ChildSpec(
            "gateway",
            "gateway",
            cli_argv(data_dir, debug, "gateway", "--host", host, "--port", str(port), *gateway_args),
            env=env,
        )
    )
    return specs


def readiness_problems(
    expected: Sequence[Expected],
    beats: Sequence[ProcessInfo],
    *,
    hostname: str,
    redis_error: str | None,
    gateway_error: str | None,
) -> list[str]:
    """What still keeps the platform from being ready; empty when it is."""
    problems: list[str] = []
    if redis_error is not None:
        problems.append(f"Redis does not answer ({redis_error})")
    if gateway_error is not None:
        problems.append(f"the gateway is not healthy ({gateway_error})")
    reported = {(b.kind, b.pid) for b in beats if b.host == hostname}
    for want in expected:
        if (want.kind, want.pid) not in reported:
            problems.append(f"{want.name} (pid {want.pid}) has not reported a heartbeat")
    return problems
