"""The chaos run itself (`run_chaos`), on whichever store it is given: one Valkey (`tests/chaos/test_chaos.py`)
or a cluster (`tests/cluster/test_chaos_cluster.py`)."""

from __future__ import annotations

import random
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from dolmen.platform.model import ComponentConfig, RetryPolicy
from dolmen.platform.store.heartbeats import read_processes
from tests.chaos.checks import Problem, read_everything, verify, wait_all_finished, whereabouts
from tests.chaos.fleet import Chaos, Fleet, wait_healthy
from tests.chaos.report import problem_report, summary
from tests.chaos.servers import FlakyServer
from tests.chaos.settings import CUTS_PER_S, LOCK_TTL_MS, MAX_ATTEMPTS, RUNNERS, SEED, TAIL_S, Size
from tests.chaos.stores import Store
from tests.chaos.traffic import Traffic, plan
from tests.support.guests import build_guest
from tests.support.platform import Processes, activity, deploy, workflow
from tests.support.servers import ephemeral_port


def run_chaos(
    store: Store, size: Size, tmp_path: Path, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config,
    cleanup: ExitStack, name: str = "chaos",
) -> None:  # fmt: skip
    """Start `store`, the platform on it and the chaos; then check everything (see `test_chaos` for what)."""
    began = time.monotonic()
    # Kept in .pytest_cache (other pytest runs rotate the tmp directories): the report, and the logs on failure.
    cache = getattr(pytestconfig, "cache", None)
    keep = (Path(cache.mkdir(name)) if cache is not None else tmp_path / "keep") / time.strftime("%Y%m%d-%H%M%S")
    keep.mkdir(parents=True, exist_ok=True)
    report_path = keep / "chaos-report.txt"
    logs = tmp_path / "logs"
    (logs / "direct").mkdir(parents=True)
    (logs / "proxied").mkdir()

    store.start()
    cleanup.callback(store.stop)
    flaky = FlakyServer()
    cleanup.callback(flaky.close)
    reader = store.reader()
    cleanup.callback(reader.close)
    env = {"DOLMEN_LOCK_TTL_MS": str(LOCK_TTL_MS)}
    direct = Processes(store.direct_url, logs / "direct", env=dict(env))
    cleanup.callback(direct.stop)
    proxied = Processes(store.proxied_url, logs / "proxied", env=dict(env))
    cleanup.callback(proxied.stop)
    gateway_port = ephemeral_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    fleet = Fleet(direct, proxied, gateway_port)

    deploy(store.direct_url, [
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
    jobs = plan(random.Random(SEED), flaky, size)

    # The chaos: traffic, kills, stalls, partitions, cuts, lost replies, the store's disruptions.
    t0 = time.monotonic()
    setup_s = t0 - began
    for n, proxy in enumerate(store.proxies):
        proxy.cut_randomly(CUTS_PER_S, SEED + 2 + 1000 * n)
    disrupt_at = store.plan(size.submit_s)
    chaos = Chaos(fleet, store, t0, disrupt_at)
    chaos.start()
    cleanup.callback(chaos.stopping.set)  # (runs before the processes stop)
    traffic = Traffic(jobs, gateway_url, store.proxied_url, t0, size.submit_s)
    traffic.run()
    time.sleep(TAIL_S)
    chaos.finish()
    for proxy in store.proxies:
        proxy.stop_cutting()
    # A cancellation lost with a killed master (losses.py) leaves its workflow waiting an hour: sent again.
    again = [j for j in jobs if j.cancel_after is not None and j.execution_id and store.lost.touches(j.execution_id)]
    if again:
        traffic.cancel_again(again)
        chaos.note(f"cancelled again {len(again)} execution(s) in trees that lost writes")
    chaos_s = time.monotonic() - t0

    # The calm: every process up, no faults; everything accepted must end.
    settle_began = time.monotonic()
    for note in fleet.revive():
        chaos.note(note)
    chaos.note(f"chaos over; settling with {', '.join(fleet.alive())} alive")
    gateway_up = wait_healthy(gateway_url, 60)
    # (An accepted root whose creation was lost never appears; one that exists is waited for like any other.)
    roots = [j.execution_id for j in jobs if j.execution_id and not store.lost.touches(j.execution_id)]
    unfinished = wait_all_finished(reader, roots, size.settle_s)
    stuck = whereabouts(reader, unfinished)
    for note in fleet.revive():
        chaos.note(note)
    settle_s = time.monotonic() - settle_began

    verify_began = time.monotonic()
    snap = read_everything(reader, jobs)
    found = verify(jobs, snap, store.lost)
    problems = [p for p in found if not p.excused]
    excused = [p for p in found if p.excused]
    if chaos.error is not None:
        problems.append(Problem("the killer thread failed", "-", repr(chaos.error)))
    for error in traffic.errors:
        problems.append(Problem("a traffic thread failed", "-", error))
    if not gateway_up:
        problems.append(Problem("the gateway did not come back", "-", gateway_url))
    if chaos.disrupted != len(disrupt_at):
        problems.append(Problem("store disruptions carried out", "-", f"{chaos.disrupted} of {len(disrupt_at)}"))
    if (store_trouble := store.healthy()) is not None:
        problems.append(Problem("the store did not recover", "-", store_trouble))
    durations = {
        "setup": setup_s, "chaos": chaos_s, "settle": settle_s,
        "verify": time.monotonic() - verify_began, "total": time.monotonic() - began,
    }  # fmt: skip
    # Runners count the attempts they ran in batches; a killed runner's last heartbeat undercounts.
    batched = sum(int(p.details.get("batched", 0)) for p in read_processes(reader) if p.kind == "runner")
    text = summary(jobs, snap, chaos, fleet, store, flaky, size, durations, batched, len(excused))
    if problems:
        shutil.copytree(logs, keep / "logs")
    for n, stream in enumerate(store.lost.streams):
        (keep / f"lost-writes-{n}.resp").write_bytes(stream)  # what a killed master's replica never got
    excuses = problem_report(excused, snap, jobs, full=True, title="explained by writes lost on purpose") if excused else ""
    report_path.write_text(
        f"{text}\n\ntimeline:\n" + "\n".join(chaos.timeline)
        + "\n\nexited on their own:\n" + "\n\n".join(fleet.died)
        + f"\n\nunfinished after the settle wait: {unfinished[:50]}\n"
        + "".join(f"  {i}: {where}\n" for i, where in stuck.items()) + "\n"
        + (problem_report(problems, snap, jobs, full=True) if problems else "no problems")
        + (f"\n\n{excuses}" if excuses else "")
        + f"\n\nprocess logs: {keep / 'logs' if problems else logs}\n"
    )  # fmt: skip
    with capsys.disabled():
        print(f"\n{text}\n  timeline ({len(chaos.timeline)} actions):")
        for line in chaos.timeline:
            print(f"    {line}")
        if fleet.died:
            print(f"  {len(fleet.died)} process(es) exited on their own; their log tails are in the report")
        if excused:
            print(problem_report(excused, snap, jobs, full=False, title="explained by writes lost on purpose"))
        if problems:
            print(problem_report(problems, snap, jobs, full=False))
        print(f"  report: {report_path}" + (f"\n  process logs: {keep / 'logs'}" if problems else ""))
    assert not problems, f"{len(problems)} problem(s), listed above and in {report_path}"
