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

from ..platform.priorities import CLASSES, queue_name
from ..platform.store import keys
from ..platform.store.connection import Redis, map_redis_errors
from ..platform.store.records import STATUSES
from ..platform.store.shards import Shards

# Seconds; covers a cached sub-millisecond call up to a long wait.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# Active executions whose status is sampled at each scrape (one HGET each).
MAX_ACTIVE_SAMPLED = 10_000


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
        """The exposition text: `shared` (the store's and the other processes' families), then this gateway's."""
        once = CollectorRegistry(auto_describe=False)
        once.register(_Families(list(shared)))
        return generate_latest(once) + generate_latest(self.registry)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def store_metrics(client: Redis, shards: Shards, ffqns: Iterable[str]) -> list[Metric]:
    """Platform-wide gauges read from the store (every shard): executions by status, queue depths."""
    names = sorted(set(ffqns))
    count = shards.count
    with map_redis_errors():
        pipe = client.pipeline(transaction=False)
        for shard in range(count):
            pipe.zcard(shards.key(shard, "executions"))
            pipe.zcard(shards.key(shard, "active"))
            pipe.zrange(shards.key(shard, "active"), 0, MAX_ACTIVE_SAMPLED // count - 1)
        # A function's depth counts its queues of every priority class (platform/priorities.py).
        for ffqn in names:
            for priority in CLASSES:
                for stream in shards.queues(queue_name(ffqn, priority)):
                    pipe.xlen(stream)
        replies = pipe.execute()
        total = sum(int(n) for n in replies[0 : 3 * count : 3])
        active = sum(int(n) for n in replies[1 : 3 * count : 3])
        active_ids = [raw for part in replies[2 : 3 * count : 3] for raw in part]
        lengths = [int(d) for d in replies[3 * count :]]
        per_function = count * len(CLASSES)
        depths = [sum(lengths[i * per_function : (i + 1) * per_function]) for i in range(len(names))]
        by_status = dict.fromkeys(STATUSES, 0)
        if active_ids:
            pipe = client.pipeline(transaction=False)
            for raw_id in active_ids:
                pipe.hget(keys.state(raw_id.decode()), "status")
            for status in pipe.execute():
                name = status.decode() if status else ""
                if name in by_status:
                    by_status[name] += 1
    # Finished executions leave the active index; a just-finished one may still be in it.
    by_status["finished"] += max(0, total - active)
    executions = GaugeMetricFamily(
        "dolmen_executions",
        "Executions in the store by status (workflow children included; "
        f"the statuses of at most {MAX_ACTIVE_SAMPLED} unfinished executions are read per scrape).",
        labels=("status",),
    )
    for status in STATUSES:
        executions.add_metric((status,), by_status[status])
    depth = GaugeMetricFamily(
        "dolmen_queue_depth", "Queue entries per deployed function: waiting for a runner or being run.", labels=("ffqn",)
    )
    for ffqn, count_ in zip(names, depths):
        depth.add_metric((ffqn,), count_)
    unfinished = GaugeMetricFamily("dolmen_executions_unfinished", "Executions not finished yet (the store's active index).")
    unfinished.add_metric((), active)
    return [executions, unfinished, depth]
