"""`GET /metrics` in the Prometheus text format (version 0.0.4), written by `prometheus_client`.

Three sources, named apart:
- `dolmen_executions`, `dolmen_executions_unfinished`, `dolmen_queue_depth`:
  read from the store at scrape time, so every gateway reports the same
  platform-wide numbers.
- the runners' and schedulers' own metrics (`platform/metrics.py`: attempt
  durations, lock takeovers, replay time, timers fired, ...), from their last
  heartbeat, each sample labelled with its `process`.
- `dolmen_gateway_*`: counted in this gateway process since it started
  (request latency by handler; the creation-to-finish duration of the
  executions this gateway waited for). Sum them over gateways.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..platform.store.counts import MAX_ACTIVE_SAMPLED, StoreCounts
from ..platform.store.records import STATUSES

# Seconds; covers a cached sub-millisecond call up to a long wait.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class GatewayMetrics:
    """What this gateway process measures about itself, in a `prometheus_client` registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "dolmen_gateway_request_duration_seconds",
            "Time from request received to response started, in this gateway, by handler and status class "
            "(includes the time spent waiting for a result when the request asked to wait).",
            ("handler", "code"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.execution_durations = Histogram(
            "dolmen_gateway_execution_duration_seconds",
            "Creation-to-finish time of executions this gateway created and waited for until they finished "
            "(from the store's created_at and finished_at).",
            ("kind",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.invocations = Counter(
            "dolmen_gateway_invocations",
            "Invocations received by this gateway, by entry point and outcome "
            "(created, existing: an idempotent repeat, rejected: a 4xx/5xx answer).",
            ("via", "outcome"),
            registry=self.registry,
        )

    def render(self, shared: Iterable[Metric]) -> bytes:
        """The exposition text: `shared` (the store's and the other processes' families), then this gateway's.

        UTF-8 bytes of the Prometheus text format 0.0.4 (`prometheus_client.generate_latest`), served with
        `CONTENT_TYPE_LATEST`.
        """
        once = CollectorRegistry(auto_describe=False)
        once.register(_Families(list(shared)))
        return generate_latest(once) + generate_latest(self.registry)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def store_metrics(counts: StoreCounts) -> list[Metric]:
    """Platform-wide gauges from the store's counts (`store.counts.read_counts`): executions by status, queue depths."""
    executions = GaugeMetricFamily(
        "dolmen_executions",
        "Executions in the store by status (workflow children included; "
        f"the statuses of at most {MAX_ACTIVE_SAMPLED} unfinished executions are read per scrape).",
        labels=("status",),
    )
    for status in STATUSES:
        executions.add_metric((status,), counts.by_status[status])
    depth = GaugeMetricFamily(
        "dolmen_queue_depth", "Queue entries per deployed function: waiting for a runner or being run.", labels=("ffqn",)
    )
    for ffqn, count in counts.queue_depths.items():
        depth.add_metric((ffqn,), count)
    unfinished = GaugeMetricFamily("dolmen_executions_unfinished", "Executions not finished yet (the store's active index).")
    unfinished.add_metric((), counts.unfinished)
    return [executions, unfinished, depth]
