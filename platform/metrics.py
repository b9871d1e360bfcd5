"""Process metrics through `prometheus_client`, served platform-wide by every gateway.

Each runner and scheduler counts into a `CollectorRegistry` of its own (never
the library's global one) and its heartbeat (see `store.heartbeats`) writes a
snapshot of it to the `dolmen:metrics` hash every `heartbeat.INTERVAL_S`. A
gateway's `GET /metrics` serves its own registry, the store's gauges, and, via
`ProcessesCollector`, the last snapshot of every live process, each sample
labelled with the process's heartbeat id (`process="runner:host:pid"`). So one
scrape target covers the whole platform, at most one heartbeat old; a process
that stopped beating drops out once its heartbeat is stale, and Prometheus
sees a new series when a process restarts (its counters start at 0 again).

Snapshot format (JSON): a list of families `[name, type, help, samples]`, each
sample `[sample name, {label: value}, value]`; `_created` samples are left out
(a scrape gets them from no other source, and they double the size).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

METRICS_KEY = "dolmen:metrics"

# Seconds; an attempt of a trivial activity takes well under a millisecond,
# a long one minutes.
ATTEMPT_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
# Seconds; a replay runs at tens of thousands of events a second.
REPLAY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
)  # fmt: skip


class RunnerMetrics:
    """What a runner process counts: its attempts, lock takeovers and workflow replays."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.attempts = Histogram(
            "dolmen_attempt_duration_seconds",
            "Time an attempt ran in this runner (a workflow's up to its write or unload; children it runs "
            "inline count on their own), by execution kind and how the attempt ended (returned: its outcome was recorded, including guest failures; store_error: the store "
            "could not be written and the lease expires; runner_error: a bug, recorded as the execution's failure).",
            ("kind", "outcome"),
            buckets=ATTEMPT_BUCKETS,
            registry=self.registry,
        )
        self.takeovers = Counter(
            "dolmen_lock_takeovers",
            "Executions this runner locked after the previous holder's lease expired (each is an attempt_lost "
            "event: a runner died, hung or lost its connection), by execution kind.",
            ("kind",),
            registry=self.registry,
        )
        # At 0 from the start: a scrape shows the series before the first takeover, and rate() has a baseline.
        for kind in ("activity", "workflow"):
            self.takeovers.labels(kind)
        self.failures = Counter(
            "dolmen_attempt_failures",
            "Activity attempts whose guest failed, by failure kind (trap, timeout, err for an err result the retry "
            "policy retries, ...): each is retried or recorded as the execution's failure per its retry policy.",
            ("kind", "failure"),
            registry=self.registry,
        )
        self._attempt_series: dict[tuple[str, str], Any] = {}
        self.replays = Histogram(
            "dolmen_replay_duration_seconds",
            "Time a workflow run spent replaying its event log before reaching its end (runs that had logged "
            "requests to replay only).",
            buckets=REPLAY_BUCKETS,
            registry=self.registry,
        )

    def attempt(self, kind: str, outcome: str) -> Any:
        """The `attempts` series of (`kind`, `outcome`), to `observe` seconds on: looked up once, since
        `labels()` takes a lock and builds its key at every call (a direct call records one per call)."""
        key = (kind, outcome)
        series = self._attempt_series.get(key)
        if series is None:
            series = self._attempt_series[key] = self.attempts.labels(kind, outcome)
        return series

    def snapshot(self) -> str:
        """This runner's families as JSON (`snapshot`), for its heartbeat to write."""
        return snapshot(self.registry)


class SchedulerMetrics:
    """What a scheduler process counts: timers and cron ticks fired, and executions the repair sweep queued again."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.timers_fired = Counter(
            "dolmen_timers_fired",
            "Durable timers (sleeps, retry backoffs, timeouts) this scheduler fired.",
            registry=self.registry,
        )
        self.cron_fired = Counter(
            "dolmen_cron_fired",
            "Scheduled executions this scheduler started for deployment schedules.",
            registry=self.registry,
        )
        self.repaired = Counter(
            "dolmen_repair_requeued",
            "Executions the repair sweep queued again (neither queued, locked nor timed: a lost write or entry).",
            registry=self.registry,
        )

    def snapshot(self) -> str:
        """This scheduler's families as JSON (`snapshot`), for its heartbeat to write."""
        return snapshot(self.registry)


def snapshot(registry: CollectorRegistry) -> str:
    """The registry's families as JSON (module docstring's format)."""
    families: list[list[Any]] = []
    for family in registry.collect():
        samples = [[s.name, s.labels, s.value] for s in family.samples if not s.name.endswith("_created")]
        families.append([family.name, family.type, family.documentation, samples])
    return json.dumps(families, separators=(",", ":"))


def merge_snapshots(snapshots: Iterable[tuple[str, str]]) -> list[Metric]:
    """Families of many processes' snapshots `(process id, JSON)`, each sample labelled `process`.

    Pure. A snapshot that cannot be read (another version's format) is left
    out rather than breaking the scrape; so is a family whose type changed
    between processes (the first one's wins).
    """
    merged: dict[str, Metric] = {}
    for process, text in snapshots:
        try:
            families = _parse(text)
        except (ValueError, TypeError, KeyError):
            continue
        for name, kind, documentation, samples in families:
            metric = merged.get(name)
            if metric is None:
                metric = merged[name] = Metric(name, documentation, kind)
            elif metric.type != kind:
                continue
            for sample_name, labels, value in samples:
                metric.add_sample(sample_name, {**labels, "process": process}, value)
    return list(merged.values())


def _parse(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
    out: list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]] = []
    for name, kind, documentation, samples in json.loads(text):
        rows = []
        for sample_name, labels, value in samples:
            if not isinstance(labels, dict):
                raise ValueError("malformed sample")
            rows.append((str(sample_name), {str(k): str(v) for k, v in labels.items()}, float(value)))
        out.append((str(name), str(kind), str(documentation), rows))
    return out


class ProcessesCollector(Collector):
    """A collector of the live processes' snapshots; `read()` gives `(process id, JSON)` pairs."""

    def __init__(self, read: Callable[[], Sequence[tuple[str, str]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        """The merged families of `read()`'s snapshots (`merge_snapshots`), at each scrape (prometheus_client's `Collector`)."""
        yield from merge_snapshots(self._read())
