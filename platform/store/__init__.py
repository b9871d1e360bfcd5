"""The execution store in Redis: executions, their logs and queues, leases, deployments; the only code that talks to Redis.

The names below are the package's API. They are imported on first use (PEP 562), so
importing one module of the package does not load the others (nor wasmtime).

Errors: whatever reaches Redis may raise `StoreError` or one of its subclasses
(`StoreUnavailableError`, `StoreAccessError`, `StoreFullError`,
`ReplicaWaitError`), redis-py's exceptions translated by `map_redis_errors`
(see `connection.store_error` for which is which); docstrings here name only
the errors a call raises besides those. The exceptions are the helpers that
only queue commands on a pipeline or call a script (`Scripts`,
`scripts.Pipeline`, `outbox.deliver`, `trees.remove_trees`, ...): they raise
redis-py's own, and their callers within `store/` translate them. Times are
milliseconds since the epoch (`clock.now_ms`) unless a name says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .executions import ExecutionStore, response_event
    from .creates import Created, NewExecution
    from .clock import now_ms
    from .leases import Leases
    from .lease_values import Lease, LockRefused, PendingCommit, QueueEntry
    from .records import Event, ExecutionState, Failure, Outcome, decode_entries
    from .connection import AsyncStoreClient, Redis, StoreClient, connect, connect_async, map_redis_errors, wait_for_store
    from .scripts import Scripts
    from .deployments import DeploymentStore, RevisionCache
    from .repins import UpgradeStore
    from .heartbeats import Heartbeat, ProcessInfo, read_processes
    from .counts import StoreCounts, read_counts
    from .reads import AsyncExecutionReads, ExecutionReads
    from .listing import Cursor, ListFilter, Page
    from .outcomes import OUTCOMES

# Each exported name -> the module that defines it.
_EXPORTS = {
    "AsyncStoreClient": "connection",
    "AsyncExecutionReads": "reads",
    "Created": "creates",
    "Cursor": "listing",
    "DeploymentStore": "deployments",
    "Event": "records",
    "ExecutionReads": "reads",
    "ExecutionState": "records",
    "ExecutionStore": "executions",
    "Failure": "records",
    "Heartbeat": "heartbeats",
    "Lease": "lease_values",
    "Leases": "leases",
    "ListFilter": "listing",
    "LockRefused": "lease_values",
    "NewExecution": "creates",
    "OUTCOMES": "outcomes",
    "Outcome": "records",
    "Page": "listing",
    "PendingCommit": "lease_values",
    "ProcessInfo": "heartbeats",
    "QueueEntry": "lease_values",
    "Redis": "connection",
    "RevisionCache": "deployments",
    "Scripts": "scripts",
    "StoreClient": "connection",
    "StoreCounts": "counts",
    "UpgradeStore": "repins",
    "connect": "connection",
    "connect_async": "connection",
    "decode_entries": "records",
    "map_redis_errors": "connection",
    "now_ms": "clock",
    "read_counts": "counts",
    "read_processes": "heartbeats",
    "response_event": "executions",
    "wait_for_store": "connection",
}

__all__ = [
    "AsyncStoreClient",
    "AsyncExecutionReads",
    "Created",
    "Cursor",
    "DeploymentStore",
    "Event",
    "ExecutionReads",
    "ExecutionState",
    "ExecutionStore",
    "Failure",
    "Heartbeat",
    "Lease",
    "Leases",
    "ListFilter",
    "LockRefused",
    "NewExecution",
    "OUTCOMES",
    "Outcome",
    "Page",
    "PendingCommit",
    "ProcessInfo",
    "QueueEntry",
    "Redis",
    "RevisionCache",
    "Scripts",
    "StoreClient",
    "StoreCounts",
    "UpgradeStore",
    "connect",
    "connect_async",
    "decode_entries",
    "map_redis_errors",
    "now_ms",
    "read_counts",
    "read_processes",
    "response_event",
    "wait_for_store",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
