"""`GET /metrics` in the Prometheus text format (version 0.0.4).

Two sources, named apart:
- `dolmen_executions`, `dolmen_queue_depth`: read from the store at scrape
  time, so every gateway reports the same platform-wide numbers.
- `dolmen_gateway_*`: counted in this gateway process since it started
  (request latency by handler; the creation-to-finish duration of the
  executions this gateway waited for). Sum them over gateways.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence


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


class Histogram:
    """A cumulative histogram with labels; thread-safe, in memory."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float] = LATENCY_BUCKETS):
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.buckets = tuple(buckets)
        self._lock = threading.Lock()
        # label values -> (bucket counts, sum, count)
        self._series: dict[tuple[str, ...], tuple[list[int], float, int]] = {}

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            counts, total, n = self._series.get(labels) or ([0] * len(self.buckets), 0.0, 0)
            i = bisect.bisect_left(self.buckets, value)
            if i < len(counts):
                counts[i] += 1
            self._series[labels] = (counts, total + value, n + 1)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            series = sorted((k, (list(c), s, n)) for k, (c, s, n) in self._series.items())
        for label_values, (counts, total, n) in series:
            base = list(zip(self.label_names, label_values))
            cumulative = 0
            for bound, count in zip(self.buckets, counts):
                cumulative += count
                lines.append(f"{self.name}_bucket{_labels([*base, ('le', _num(bound))])} {cumulative}")
            lines.append(f"{self.name}_bucket{_labels([*base, ('le', '+Inf')])} {n}")
            lines.append(f"{self.name}_sum{_labels(base)} {_num(total)}")
            lines.append(f"{self.name}_count{_labels(base)} {n}")
        return lines


class Counter:
    """A monotonically increasing counter with labels."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], int] = {}

    def inc(self, *labels: str) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0) + 1

    def value(self, *labels: str) -> int:
        with self._lock:
            return self._values.get(labels, 0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(list(zip(self.label_names, k)))} {v}" for k, v in items]
        return lines


class GatewayMetrics:
    """What this gateway process measures about itself."""

    def __init__(self) -> None:
        self.requests = Histogram(
            "dolmen_gateway_request_duration_seconds",
            "Time from request received to response started, in this gateway, by handler and status class "
            "(includes the time spent waiting for a result when the request asked to wait).",
            ("handler", "code"),
        )
        self.execution_durations = Histogram(
            "dolmen_gateway_execution_duration_seconds",
            "Creation-to-finish time of executions this gateway created and waited for until they finished "
            "(from the store's created_at and finished_at).",
            ("kind",),
        )
        self.invocations = Counter(
            "dolmen_gateway_invocations_total",
            "Invocations received by this gateway, by entry point and outcome "
            "(created, existing: an idempotent repeat, rejected: a 4xx/5xx answer).",
            ("via", "outcome"),
        )

    def render_local(self) -> list[str]:
        return [*self.requests.render(), *self.execution_durations.render(), *self.invocations.render()]


def store_metrics(client: Redis, shards: Shards, ffqns: Iterable[str]) -> list[str]:
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
    lines = [
        "# HELP dolmen_executions Executions in the store by status (workflow children included; "
        f"the statuses of at most {MAX_ACTIVE_SAMPLED} unfinished executions are read per scrape).",
        "# TYPE dolmen_executions gauge",
        *(f'dolmen_executions{{status="{s}"}} {by_status[s]}' for s in STATUSES),
        "# HELP dolmen_executions_unfinished Executions not finished yet (the store's active index).",
        "# TYPE dolmen_executions_unfinished gauge",
        f"dolmen_executions_unfinished {active}",
        "# HELP dolmen_queue_depth Queue entries per deployed function: waiting for a runner or being run.",
        "# TYPE dolmen_queue_depth gauge",
        *(f"dolmen_queue_depth{_labels([('ffqn', f)])} {d}" for f, d in zip(names, depths)),
    ]
    return lines


def _labels(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value))
