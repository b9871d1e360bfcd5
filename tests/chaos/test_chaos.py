"""Chaos: hundreds of mixed executions while processes are SIGKILLed, Valkey restarts and connections drop.

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

- `DOLMEN_CHAOS_SCALE` (default 0.6, as the cluster run's): multiplies the number of
  top-level executions (1,000 at scale 1) and the time they are submitted over (60 s at 1).
  0.6 (600 over 36 s) takes about a minute on 2 cores when all is well (at most about 6
  minutes when executions never end: every wait is bounded); 1 takes about 80 s; use 10
  for the full run.
- `DOLMEN_CHAOS_SEED` (default 1): seeds the mix, the kills and the cuts. Timing still
  differs between runs, so a seed narrows a failure down rather than replaying it.

Run: `.venv/bin/pytest tests/chaos` (marked slow). The same run on a Valkey Cluster, with a proxy
in front of every node and its masters killed and failed over instead of Valkey restarts, is
`tests/cluster/test_chaos_cluster.py` (`run_chaos` in `tests/chaos/run.py` drives both; the store
under chaos is a `Store` of `tests/chaos/stores.py`).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.chaos.run import run_chaos
from tests.chaos.settings import Size
from tests.chaos.stores import OneValkey

SIZE = Size.from_env(0.6)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SIZE.timeout_s)]


def test_chaos(tmp_path: Path, capsys: pytest.CaptureFixture[str], pytestconfig: pytest.Config) -> None:
    """Mixed executions (600 by default) survive kills, Valkey restarts and cut connections: each ends once, nothing twice."""
    with ExitStack() as cleanup:
        run_chaos(OneValkey(tmp_path / "valkey"), SIZE, tmp_path, capsys, pytestconfig, cleanup)
