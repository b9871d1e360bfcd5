"""The run's report: the counts and durations (`summary`), and the problems with the offending
executions' events (`problem_report`)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from dolmen.platform.store.records import Event
from tests.chaos.checks import Problem, Snapshot, parent_of, scheduler_of
from tests.chaos.fleet import Chaos, Fleet
from tests.chaos.servers import FlakyServer
from tests.chaos.settings import MIX, SEED, Size
from tests.chaos.stores import Store
from tests.chaos.traffic import Job


def _types_line(events: list[Event]) -> str:
    """`created, child_submitted, response x3, finished`: runs of one type collapsed."""
    parts: list[str] = []
    for event in events:
        if parts and parts[-1].split(" x")[0] == event.type:
            head, _, n = parts[-1].partition(" x")
            parts[-1] = f"{head} x{int(n or 1) + 1}"
        else:
            parts.append(event.type)
    return ", ".join(parts)


def _event_line(event: Event) -> str:
    data = {k: v for k, v in event.data.items() if k not in ("component_digest", "stdout", "stderr", "output")}
    text = json.dumps(data, sort_keys=True)
    return f"  [{event.index}] {event.type} at={event.at} {text[:300]}"


def problem_report(problems: list[Problem], snap: Snapshot, jobs: list[Job], full: bool, title: str = "") -> str:
    by_root = {j.execution_id: j for j in jobs if j.execution_id}
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        grouped[problem.check].append(problem)
    lines = [f"{len(problems)} problem(s) in {len({p.execution_id for p in problems})} execution(s){f' {title}' if title else ''}:"]
    detailed: set[str] = set()
    for check, items in grouped.items():
        lines.append(f"- {check}: {len(items)}")
        for problem in items if full else items[:12]:
            eid = problem.execution_id
            state = snap.states.get(eid)
            job = by_root.get(eid.split(".", 1)[0])
            what = f"{state.ffqn.rsplit('/', 1)[-1]} {json.dumps(state.params)[:60]} {state.status}" if state else "no state"
            root = f" (root {job.kind} via {job.via})" if job else ""
            lines.append(f"    {eid}: {problem.detail}  [{what}{root}]")
            events = snap.logs.get(eid, [])
            if events:
                lines.append(f"      events: {_types_line(events)}")
                if eid not in detailed and (full or len(detailed) < 6):
                    detailed.add(eid)
                    lines.extend("    " + _event_line(e) for e in events)
        if not full and len(items) > 12:
            lines.append(f"    ... and {len(items) - 12} more (see the report file)")
    return "\n".join(lines)


def summary(jobs: list[Job], snap: Snapshot, chaos: Chaos, fleet: Fleet, store: Store, flaky: FlakyServer,
            size: Size, durations: dict[str, float], batched: int = 0, excused: int = 0) -> str:  # fmt: skip
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for job in jobs:
        state = snap.states.get(job.execution_id or "")
        if job.execution_id is None:
            outcome = "not accepted"
        elif state is None:
            outcome = "missing"
        elif state.status != "finished" or state.outcome is None:
            outcome = "unfinished"
        elif state.outcome.failure is None:
            outcome = "ok"
        else:
            outcome = state.outcome.failure.kind
        outcomes[job.kind][outcome] += 1
    states = list(snap.states.values())
    activities = [s for s in states if s.kind == "activity"]
    workflows = [s for s in states if s.kind == "workflow"]
    all_types = Counter(e.type for events in snap.logs.values() for e in events)
    scheduled = sum(1 for s in states if scheduler_of(s, snap.logs))
    roots = sum(1 for s in states if not parent_of(s, snap.logs)) - scheduled
    http_jobs = [j for j in jobs if j.via == "http"]
    client_jobs = [j for j in jobs if j.via == "client"]
    cancels = Counter((j.cancel_result or "none").split(":")[0] for j in jobs if j.cancel_after is not None and j.execution_id)
    # A flaky activity hit its server more than failures + 1 times: a success whose result was lost
    # (its runner killed or stalled before writing it) and that ran again, as at-least-once allows.
    proxies = store.proxies
    reran = sum(1 for j in jobs if j.kind == "flaky" and flaky.hits[f"j{j.index}"] > int(j.params[0].rsplit("/", 1)[1]) + 1)
    lines = [
        f"chaos summary ({type(store).__name__}, scale {size.scale:g}, seed {SEED})",
        f"  top-level executions: {len(jobs)} planned, {sum(1 for j in jobs if j.execution_id)} accepted",
    ]
    for kind in MIX:
        if outcomes.get(kind):
            lines.append(f"    {kind:14} {sum(outcomes[kind].values()):5}  " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes[kind].items())))
    lines += [
        f"  executions in Valkey: {len(states)} ({roots} top-level, {len(states) - roots - scheduled} children, {scheduled} scheduled;"
        f" {len(activities)} activities, {len(workflows)} workflows)",
        f"  activity attempts: {sum(s.attempt for s in activities)} for {len(activities)} activities"
        f" ({sum(1 for s in activities if s.attempt > 1)} ran more than once; at least {batched} in batches); events: "
        + ", ".join(f"{t} {n}" for t, n in sorted(all_types.items())),
        f"  submissions: {len(http_jobs)} over HTTP in {sum(j.attempts for j in http_jobs)} requests,"
        f" {len(client_jobs)} by the Client in {sum(j.attempts for j in client_jobs)} calls;"
        f" flaky HTTP server hit {sum(flaky.hits.values())} times ({reran} flaky activities ran again after a success)",
        f"  cancellations: {sum(cancels.values())} ({', '.join(f'{k} {v}' for k, v in sorted(cancels.items()))})",
        f"  kills: {sum(fleet.kills.values())} ({', '.join(f'{k} {v}' for k, v in sorted(fleet.kills.items()))});"
        f" exited on their own: {len(fleet.died)}; process starts: {sum(fleet.starts.values())}",
        f"  stalls (SIGSTOP past the lock TTL): {chaos.stalls}; partitions (proxies held): {chaos.partitions};"
        f" {len(proxies)} prox{'y' if len(proxies) == 1 else 'ies'}: {sum(p.connections_accepted for p in proxies)} connections,"
        f" {sum(p.cuts for p in proxies)} cuts ({chaos.cut_alls} cut-all), {sum(p.dropped_replies for p in proxies)} replies"
        f" lost of {chaos.drops_armed} armed",
        "  store disruptions: " + (", ".join(f"{k} {v}" for k, v in sorted(store.disruptions.items())) or "none")
        + (f"; lost on purpose: {store.lost}, explaining {excused} check(s) there" if store.lost.streams else ""),
        "  durations: " + ", ".join(f"{k} {v:.0f}s" for k, v in durations.items()),
    ]
    return "\n".join(lines)
