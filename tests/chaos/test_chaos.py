"""Chaos: about 1,000 mixed executions while processes are SIGKILLed, Valkey restarts and connections drop.

The platform runs as real processes on a Valkey of the test's own (append-only file,
`appendfsync always`; on a port and with an ACL user that no other test session can
stumble on): three runners, one scheduler and one gateway, with a 1.5 s lock TTL. Two
runners and the scheduler reach Valkey through a `FaultProxy` that cuts connections at
random and, every second or so, loses the reply to a command (mostly script calls: the
command ran, the client never heard). The executions are submitted through the gateway
over HTTP (with an `Idempotency-Key`, retried until accepted) and through the `Client`
(with an execution id chosen up front, retried likewise, also through the proxy):
activities (plain, slow, HTTP ones that fail one to three times before they succeed),
serial and fan-out workflows, durable sleeps, a delay racing a child, workflows calling
workflows, workflows that schedule an execution, and workflows cancelled while they run.
Meanwhile a seeded killer thread SIGKILLs a random runner, the scheduler or the gateway
every 1-3 s and restarts it (or, now and then, stalls a runner with SIGSTOP past its lock
TTL, holds all proxied traffic as long, or cuts every proxied connection), and Valkey is
restarted twice.

Then the killing stops, the proxy stops cutting, every process runs again, and every
accepted execution must end. Checks, read straight from Valkey, for every execution the
run created (children and scheduled ones included):

- it is finished, with exactly one `finished` event, first `created`, nothing after
  `finished`, and a state outcome equal to the log's;
- no request event appears twice (same child or delay id, or same content), no join set
  is awaited more often than it was given work, and every child or scheduled execution is
  submitted by exactly one request of its parent (no duplicate, no orphan);
- every child's parent got at most one response for it, exactly one when the parent
  finished normally, equal to the child's own outcome (no activity result lost);
- every accepted top-level execution has its expected result (cancelled ones: cancelled,
  or their result if they finished first) and nothing that was not cancelled failed;
- every idempotency key names the execution its submission was answered with, and no
  top-level execution exists that no submission was answered with.

The counts (executions by kind and outcome, attempts, kills, restarts, proxy cuts,
durations) and the killer's timeline are printed even without `-s`; a failure prints the
offending execution ids with their event types. The whole report (events of the offending
executions included) goes to `.pytest_cache/d/chaos/<time>/chaos-report.txt`, with a copy
of every process's log when something failed. A process that exits on its own (say, a
runner that gives up while Valkey loads its data) is restarted, counted and reported, but
is not a failure: `platform up` restarts such a process too.

Environment:

- `DOLMEN_CHAOS_SCALE` (default 1): multiplies the number of top-level executions (1,000)
  and the time they are submitted over (60 s). 1 takes about 80 s on 2 cores when all is
  well (at most about 6 minutes when executions never end: every wait is bounded); use 10
  for the full run.
- `DOLMEN_CHAOS_SEED` (default 1): seeds the mix, the kills and the cuts. Timing still
  differs between runs, so a seed narrows a failure down rather than replaying it.

Run: `.venv/bin/pytest tests/chaos` (marked slow).
"""

from __future__ import annotations

import random
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from dolmen.platform.deploy.model import ComponentConfig, RetryPolicy
from dolmen.platform.heartbeat import read_processes
from tests.chaos.checks import Problem, read_everything, verify, wait_all_finished
from tests.chaos.fleet import Chaos, Fleet, wait_healthy
from tests.chaos.report import problem_report, summary
from tests.chaos.servers import DurableValkey, FlakyServer
from tests.chaos.settings import (
    CUTS_PER_S,
    LOCK_TTL_MS,
    MAX_ATTEMPTS,
    RUNNERS,
    SCALE,
    SEED,
    SETTLE_S,
    SUBMIT_S,
    TAIL_S,
    VALKEY_RESTARTS_AT,
)
from tests.chaos.traffic import Traffic, plan
from tests.support.faultproxy import FaultProxy
from tests.support.guests import build_guest
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.servers import ephemeral_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(600 * max(1.0, SCALE)))]


def test_chaos(tmp_path: Path, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config) -> None:
    """At least 1,000 mixed executions survive kills, Valkey restarts and cut connections: each ends once, nothing twice."""
    with ExitStack() as cleanup:
        run_chaos(tmp_path, capsys, pytestconfig, cleanup)


def run_chaos(tmp_path: Path, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config, cleanup: ExitStack) -> None:
    began = time.monotonic()
    # Kept in .pytest_cache (other pytest runs rotate the tmp directories): the report, and the logs on failure.
    cache = getattr(pytestconfig, "cache", None)
    keep = (Path(cache.mkdir("chaos")) if cache is not None else tmp_path / "keep") / time.strftime("%Y%m%d-%H%M%S")
    keep.mkdir(parents=True, exist_ok=True)
    report_path = keep / "chaos-report.txt"
    logs = tmp_path / "logs"
    (logs / "direct").mkdir(parents=True)
    (logs / "proxied").mkdir()

    valkey = DurableValkey(tmp_path / "valkey")
    valkey.start()
    cleanup.callback(valkey.stop)
    proxy = FaultProxy("127.0.0.1", valkey.port).start()
    cleanup.callback(proxy.stop)
    flaky = FlakyServer()
    cleanup.callback(flaky.close)
    reader = redis.Redis.from_url(valkey.url, socket_timeout=30)
    cleanup.callback(reader.close)
    env = {"DOLMEN_LOCK_TTL_MS": str(LOCK_TTL_MS)}
    direct = Processes(valkey.url, logs / "direct", env=dict(env))
    cleanup.callback(direct.stop)
    proxied = Processes(valkey.url_at(proxy.port), logs / "proxied", env=dict(env))
    cleanup.callback(proxied.stop)
    gateway_port = ephemeral_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    fleet = Fleet(direct, proxied, gateway_port)

    deploy(valkey.url, [
        activity(retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, initial_backoff_ms=50, max_backoff_ms=1000, retry_on_err=True),
                 allowed_hosts=(f"127.0.0.1:{flaky.port}",)),  # the flaky server, on loopback
        workflow(blocking="in-memory", blocking_timeout_ms=2000),
        (ComponentConfig("parent", "workflow", "", "tests/components/wf-parent", {}, blocking="unload"),
         build_guest("wf-parent", "parent-flows")),
    ])  # fmt: skip
    for role in fleet.roles:
        fleet.start(role)
    direct.wait_ready(runners=RUNNERS, schedulers=1, timeout=90)
    assert wait_healthy(gateway_url, 60), "the gateway never answered /healthz"
    jobs = plan(random.Random(SEED), flaky)

    # The chaos: traffic, kills, stalls, partitions, cuts, lost replies, two Valkey restarts.
    t0 = time.monotonic()
    setup_s = t0 - began
    proxy.cut_randomly(CUTS_PER_S, SEED + 2)
    chaos = Chaos(fleet, valkey, proxy, t0, [f * SUBMIT_S for f in VALKEY_RESTARTS_AT])
    chaos.start()
    cleanup.callback(chaos.stopping.set)  # (runs before the processes stop)
    traffic = Traffic(jobs, gateway_url, valkey.url_at(proxy.port), t0)
    traffic.run()
    time.sleep(TAIL_S)
    chaos.finish()
    proxy.stop_cutting()
    chaos_s = time.monotonic() - t0

    # The calm: every process up, no faults; everything accepted must end.
    settle_began = time.monotonic()
    for note in fleet.revive():
        chaos.note(note)
    chaos.note(f"chaos over; settling with {', '.join(fleet.alive())} alive")
    gateway_up = wait_healthy(gateway_url, 60)
    unfinished = wait_all_finished(reader, [j.execution_id for j in jobs if j.execution_id], SETTLE_S)
    for note in fleet.revive():
        chaos.note(note)
    settle_s = time.monotonic() - settle_began

    verify_began = time.monotonic()
    snap = read_everything(reader, jobs)
    problems = verify(jobs, snap)
    if chaos.error is not None:
        problems.append(Problem("the killer thread failed", "-", repr(chaos.error)))
    for error in traffic.errors:
        problems.append(Problem("a traffic thread failed", "-", error))
    if not gateway_up:
        problems.append(Problem("the gateway did not come back", "-", gateway_url))
    if chaos.valkey_restarts != len(VALKEY_RESTARTS_AT):
        problems.append(Problem("valkey restarts", "-", f"{chaos.valkey_restarts}"))
    durations = {
        "setup": setup_s, "chaos": chaos_s, "settle": settle_s,
        "verify": time.monotonic() - verify_began, "total": time.monotonic() - began,
    }  # fmt: skip
    # Runners count the attempts they ran in batches; a killed runner's last heartbeat undercounts.
    batched = sum(int(p.details.get("batched", 0)) for p in read_processes(reader) if p.kind == "runner")
    text = summary(jobs, snap, chaos, fleet, proxy, flaky, durations, batched)
    if problems:
        shutil.copytree(logs, keep / "logs")
    report_path.write_text(
        f"{text}\n\ntimeline:\n" + "\n".join(chaos.timeline)
        + "\n\nexited on their own:\n" + "\n\n".join(fleet.died)
        + f"\n\nunfinished after the settle wait: {unfinished[:50]}\n\n"
        + (problem_report(problems, snap, jobs, full=True) if problems else "no problems")
        + f"\n\nprocess logs: {keep / 'logs' if problems else logs}\n"
    )  # fmt: skip
    with capsys.disabled():
        print(f"\n{text}\n  timeline ({len(chaos.timeline)} actions):")
        for line in chaos.timeline:
            print(f"    {line}")
        if fleet.died:
            print(f"  {len(fleet.died)} process(es) exited on their own; their log tails are in the report")
        if problems:
            print(problem_report(problems, snap, jobs, full=False))
        print(f"  report: {report_path}" + (f"\n  process logs: {keep / 'logs'}" if problems else ""))
    assert not problems, f"{len(problems)} problem(s), listed above and in {report_path}"
