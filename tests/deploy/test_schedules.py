"""Cron schedules of a deployment: validation, exactly one execution per tick with several schedulers, misfires, listing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.cron import MISFIRE_GRACE_MS, CronState, tick_execution_id
from dolmen.platform.cron_firing import CronFiring
from dolmen.platform.deploy.spec import parse_spec
from dolmen.platform.errors import DeploymentError
from dolmen.platform.ids import ExecutionId
from dolmen.platform.store.connection import connect
from dolmen.platform.store.cron_state import CronStates
from dolmen.platform.store.deployments import DeploymentStore
from dolmen.platform.store.clock import now_ms
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.shards import COUNT_KEY
from tests.deploy.conftest import Cli, active_revision, deployment, write
from tests.deploy.test_deploy import deploy_file
from tests.support.platform import Processes
from tests.support.polling import wait_for

DOUBLE = "testing:act/basic@1.0.0.double"


def schedules(*names: str, cron: str = "* * * * * *", extra: str = "") -> str:
    lines = "".join(f'  - {{name: {n}, function: "{DOUBLE}", cron: "{cron}", params: "[21]"{extra}}}\n' for n in names)
    return "schedules:\n" + lines


def ticks(client: Client, name: str) -> list[int]:
    """The ticks of the executions schedule `name` started, oldest first (each checked to be named by its tick)."""
    states, _ = client.executions.list(tags=[("schedule", name)], limit=1000)
    out = sorted(ExecutionId(s.id).created_ms for s in states)
    for state in states:
        assert state.id == tick_execution_id(name, ExecutionId(state.id).created_ms) and state.tags == {"schedule": name}
    return out


def parse_problem(text: str) -> str:
    with pytest.raises(DeploymentError) as caught:
        parse_spec(text, Path("/d/cron.yaml"), {})
    return str(caught.value)


def test_schedules_are_read_with_their_defaults() -> None:
    """Time zone UTC, misfire run-once and no params unless the file says otherwise."""
    spec = parse_spec(
        deployment("wf1") + schedules("a") + f'  - {{name: b, function: "{DOUBLE}", cron: "0 9 * * mon-fri", timezone: Europe/Paris, misfire: skip}}\n',
        Path("/d/cron.yaml"), {},
    )  # fmt: skip
    a, b = (e.schedule for e in spec.schedules)
    assert (a.cron, a.timezone, a.misfire) == ("* * * * * *", "UTC", "run-once") and spec.schedules[0].raw_params == [21]
    assert (b.timezone, b.misfire) == ("Europe/Paris", "skip") and spec.schedules[1].raw_params == []


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('{name: a, function: "%s", cron: "61 * * * *"}' % DOUBLE, "cron.yaml:13: schedules[0].cron: '61 * * * *' is not a cron expression: bad minute"),
        ('{name: a, function: "%s", cron: "* * * *"}' % DOUBLE, "schedules[0].cron: '* * * *' has 4 fields; write 5"),
        ('{name: a, function: "%s", cron: "* * * * *", timezone: Europe/Pariss}' % DOUBLE, "schedules[0].timezone: 'Europe/Pariss' is not a known time zone"),
        ('{name: a, function: "%s", cron: "* * * * *", misfire: catch-up}' % DOUBLE, "schedules[0].misfire: 'catch-up' is not one of: run-once, skip"),
        ('{name: a, function: "%s", cron: "* * * * *", params: "[21"}' % DOUBLE, "schedules[0].params: params are JSON text"),
        ('{name: a, function: "%s", cron: "* * * * *", params: "21"}' % DOUBLE, "params are a JSON array (by position) or object (by name)"),
        ('{name: a, function: "%s", cron: "* * * * *", every: 5}' % DOUBLE, "schedules[0].every: unknown key 'every'"),
        ('{name: A_1, function: "%s", cron: "* * * * *"}' % DOUBLE, "schedules[0].name: 'A_1' is not valid"),
        ("{name: a, function: double, cron: \"* * * * *\"}", "schedules[0].function: "),
        ('{name: a, function: "%s"}' % DOUBLE, "schedules[0]: the key 'cron' is missing"),
    ],
)
def test_a_bad_schedule_names_file_line_and_key(entry: str, expected: str) -> None:
    """Each mistake of a schedule entry is reported at its key, before anything is resolved."""
    assert expected in parse_problem(deployment("wf1") + f"schedules:\n  - {entry}\n")


def test_a_schedule_name_is_unique() -> None:
    """Two schedules of one name are refused at the second."""
    assert "schedules[1].name: schedule name 'a' is used twice" in parse_problem(deployment("wf1") + schedules("a", "a"))


BAD = [
    (
        "unknown function",
        schedules("a").replace(DOUBLE, "testing:act/basic@1.0.0.triple"),
        "cron.yaml:13: schedules[0].function: schedule 'a' names testing:act/basic@1.0.0.triple, which no component",
    ),
    (
        "params of another type",
        schedules("a").replace("[21]", '[\\"x\\"]'),
        "schedules[0].params: schedule 'a': params[0]: expected",
    ),
    (
        "missing param",
        schedules("a").replace("[21]", "[]"),
        "schedules[0].params: schedule 'a': ",
    ),
]


@pytest.mark.parametrize(("what", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_a_schedule_that_does_not_fit_the_deployed_function_changes_nothing(workdir: Path, redis_url: str, what: str, text: str, expected: str) -> None:
    """The function must be deployed and the params must fit its WIT signature; the active revision stays."""
    deploy_file(redis_url, write(workdir, "v1.yaml", deployment("wf1")))
    with pytest.raises(DeploymentError) as caught:
        deploy_file(redis_url, write(workdir, "cron.yaml", deployment("wf1") + text))
    assert expected in str(caught.value), (what, str(caught.value))
    assert "nothing was deployed" in str(caught.value)
    assert active_revision(redis_url) == (1, [1])


def test_two_cron_steps_racing_on_the_same_schedule_create_one_execution_per_tick(workdir: Path, redis_url: str, client: Client) -> None:
    """Two schedulers that both look after one schedule (overlapping shares) at once: every tick once, none left out."""
    deploy_file(redis_url, write(workdir, "cron.yaml", deployment("wf1") + schedules("race")))
    stop = threading.Event()
    created: list[int] = []

    def fire() -> None:
        redis = connect(redis_url)
        firing = CronFiring(Scripts(redis))
        try:
            while not stop.is_set():
                created.append(firing.step(now_ms()))
                time.sleep(0.002)
        finally:
            redis.close()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(4.2)
    stop.set()
    for t in threads:
        t.join()
    fired = ticks(client, "race")
    assert len(fired) >= 3 and sum(created) == len(fired)
    assert [b - a for a, b in zip(fired, fired[1:])] == [1000] * (len(fired) - 1)
    created_event = client.executions.events(tick_execution_id("race", fired[0]))[0]
    assert created_event.data["schedule"] == "race" and created_event.data["tick"] == fired[0]
    assert created_event.data["tags"] == {"schedule": "race"} and created_event.data["params"] == [21]


def test_cron_fires_once_per_tick_with_two_schedulers_running(workdir: Path, redis_url: str, cli: Cli, processes: Processes, client: Client) -> None:
    """Real scheduler processes: one execution per tick and schedule, a misfire after a downtime, removal stops a schedule."""
    connect(redis_url).set(COUNT_KEY, 4)  # 4 shards: 'alpha' (shard 2) and 'beta' (shard 3) go to different schedulers
    done = cli("deploy", str(write(workdir, "cron.yaml", deployment("wf1") + schedules("alpha", "beta"))))
    assert done.returncode == 0, done.stderr
    processes.runner()
    first, second = processes.scheduler(), processes.scheduler()
    processes.wait_ready(runners=1, schedulers=2)
    wait_for(lambda: len(ticks(client, "alpha")) >= 6 and len(ticks(client, "beta")) >= 6, timeout=30, what="6 ticks each")
    for name in ("alpha", "beta"):
        fired = ticks(client, name)
        assert [b - a for a, b in zip(fired, fired[1:])] == [1000] * (len(fired) - 1), name
    # Each scheduler fires ticks: the schedules are split between them by their shards (once both tick,
    # which on a loaded machine may take a few of the ticks above).
    wait_for(lambda: all("cron tick fired" in processes.log_of(proc) for proc in (first, second)), timeout=30,
             what="both schedulers to fire ticks")  # fmt: skip
    # The executions run: the first one of alpha returns 42.
    finished = client.wait(tick_execution_id("alpha", ticks(client, "alpha")[0]), 30)
    assert finished.outcome is not None and finished.outcome.value == 42
    listing = cli.json("schedules", "list", "--next", "2")["schedules"]
    assert [s["name"] for s in listing] == ["alpha", "beta"]
    assert listing[0]["last_fired"] is not None and len(listing[0]["next"]) == 2 and listing[0]["next"][0] > listing[0]["last_fired"]
    assert listing[0]["params"] == [21] and listing[0]["misfire"] == "run-once"

    # Both schedulers down past the misfire grace, then one back: the ticks older than the grace are
    # dropped, those within it fire, each once.
    for proc in (first, second):
        proc.terminate()
        proc.wait(timeout=15)
    before = ticks(client, "alpha")[-1]
    time.sleep(MISFIRE_GRACE_MS / 1000 + 3)
    back = processes.scheduler()

    def after_restart() -> list[int] | None:
        later = [t for t in ticks(client, "alpha") if t > before]
        return later if len(later) >= 12 else None

    after = wait_for(after_restart, timeout=30, what="ticks after the restart")
    assert after[0] - before >= 2000, "the ticks older than the grace do not run"
    assert [b - a for a, b in zip(after, after[1:])] == [1000] * (len(after) - 1)
    wait_for(lambda: "cron ticks were missed" in processes.log_of(back), timeout=10, what="the misfire warning")

    # A later deployment without the schedules stops them.
    done = cli("deploy", str(write(workdir, "none.yaml", deployment("wf1"))))
    assert done.returncode == 0, done.stderr
    time.sleep(2.5)  # the scheduler reads the active revision every second
    count = len(ticks(client, "alpha"))
    time.sleep(2.5)
    assert len(ticks(client, "alpha")) == count
    assert cli.json("schedules", "list")["schedules"] == []


def test_a_deploy_restarts_only_the_schedules_it_adds_or_changes(workdir: Path, redis_url: str, cli: Cli) -> None:
    """A new, changed or re-added schedule counts from its deploy (no catch-up of older ticks); an unchanged one keeps its state."""
    done = cli("deploy", str(write(workdir, "v1.yaml", deployment("wf1") + schedules("a", "b", cron="* * * * *"))))
    assert done.returncode == 0, done.stderr
    assert f"schedule a: '* * * * *' (UTC, misfire run-once) -> {DOUBLE}\n" in done.stdout
    listed = cli("schedules", "list", "--next", "1")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.split()[:1] == ["a"])
    assert DOUBLE in row and "* * * * *" in row and "UTC" in row and "run-once" in row and " - " in row  # never fired yet
    redis = connect(redis_url)
    states = CronStates(redis)
    rev1 = DeploymentStore(redis).active()
    assert rev1 is not None and [s.params for s in rev1.schedules] == [[21], [21]]
    assert {n: s.since for n, s in states.peek(["a", "b"]).items() if s} == {"a": rev1.created_at, "b": rev1.created_at}
    states.record("a", rev1.created_at - 60_000, rev1.created_at - 60_000)
    changed = schedules("a", cron="* * * * *") + schedules("b", "c", cron="*/2 * * * *").removeprefix("schedules:\n")
    rev2 = deploy_file(redis_url, write(workdir, "v2.yaml", deployment("wf1") + changed)).revision
    after = states.peek(["a", "b", "c"])
    assert after["a"] == CronState(rev1.created_at, rev1.created_at - 60_000, rev1.created_at - 60_000)
    assert after["b"] is not None and after["c"] is not None and after["b"].since == after["c"].since == rev2.created_at
    deploy_file(redis_url, write(workdir, "v3.yaml", deployment("wf1")))
    rev4 = deploy_file(redis_url, write(workdir, "v4.yaml", deployment("wf1") + schedules("a", cron="* * * * *"))).revision
    readded = states.peek(["a"])["a"]
    assert readded is not None and readded.since == rev4.created_at and readded.floor == rev4.created_at
    assert cli("deploy", "--rollback", "1").returncode == 0
    back = states.peek(["a", "b"])
    assert back["a"] == readded and back["b"] is not None and back["b"].since > rev4.created_at
    redis.close()
