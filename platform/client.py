"""The client API: what the CLI and the gateway do with a platform.

Submitting validates the function name and the parameters against the
deployed WIT signature (the codec) before anything is written, so bad input
creates nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from .deploy.model import FunctionRoute, Revision
from .errors import NotFoundError, PayloadTooLargeError, UsageError
from .ffqn import Ffqn
from .ids import ExecutionId
from .store.connection import connect
from .store.deployments import DeploymentStore, RevisionCache
from .store.executions import Created, ExecutionStore, NewExecution
from .store.records import ExecutionState
from .store.deliveries import Deliveries
from .store.scripts import Scripts
from .wit.codec import canonical_params

DEFAULT_MAX_PARAMS_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submitted execution and whether this call created it."""

    execution_id: str
    created: bool
    route: FunctionRoute


class Client:
    """Submit, read, wait for and cancel executions of the deployed functions."""

    def __init__(
        self, client: redis.Redis, *, max_params_bytes: int = DEFAULT_MAX_PARAMS_BYTES, write_behind: bool = False
    ) -> None:
        self.redis = client
        scripts = Scripts(client)
        # A long-running process (the gateway) carries out effects in a background thread.
        self._deliveries = Deliveries(scripts) if write_behind else None
        self.executions = ExecutionStore(client, scripts, self._deliveries)
        self.deployments = DeploymentStore(client)
        self.revisions = RevisionCache(self.deployments, ttl_s=0.5)
        self.max_params_bytes = max_params_bytes

    @classmethod
    def connect(cls, url: str, **kwargs: Any) -> Client:
        return cls(connect(url), **kwargs)

    def close(self) -> None:
        if self._deliveries is not None:
            self._deliveries.close()
        self.redis.close()

    # ---------------------------------------------------------- functions

    def revision(self) -> Revision:
        revision = self.revisions.active()
        if revision is None:
            raise NotFoundError("nothing is deployed yet; run `platform deploy FILE.yaml` first")
        return revision

    def route(self, ffqn: str) -> FunctionRoute:
        Ffqn.parse(ffqn)
        return self.revision().route(ffqn)

    # ------------------------------------------------------------- submit

    def submit(
        self,
        ffqn: str,
        params: Any,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        raw_size: int | None = None,
    ) -> Submitted:
        """Validate and create an execution of `ffqn`; idempotent by id or key."""
        Ffqn.parse(ffqn)
        # One read of the revision: the route and the revision recorded must agree.
        revision = self.revision()
        route = revision.route(ffqn)
        reason = route.signature.unsupported_reason()
        if reason:
            raise UsageError(f"{ffqn} cannot be invoked with JSON: {reason}")
        size = raw_size if raw_size is not None else len(json.dumps(params, ensure_ascii=False).encode())
        if size > self.max_params_bytes:
            raise PayloadTooLargeError(
                f"params are {size} bytes, over the limit of {self.max_params_bytes} bytes; "
                "pass large data by reference (e.g. a URL) instead"
            )
        values = canonical_params(params, route.signature)
        if execution_id is not None:
            eid = ExecutionId.parse(execution_id)
            if eid.parent is not None:
                raise UsageError(f"'{execution_id}' is a child id; choose a root id like 'E_<ulid>'")
        else:
            eid = ExecutionId.new()
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > 256:
                raise UsageError("an idempotency key must be 1 to 256 characters")
            eid = ExecutionId(self.executions.claim_idempotency_key(idempotency_key, eid.value))
        created: Created = self.executions.create(
            NewExecution(
                id=eid.value,
                ffqn=ffqn,
                kind=route.kind,
                digest=route.component.digest,
                params=values,
                revision=revision.number,
                component=route.component.name,
            )
        )
        return Submitted(created.id, created.created, route)

    # --------------------------------------------------------------- read

    def get(self, execution_id: str) -> ExecutionState:
        return self.executions.require(execution_id)

    def wait(self, execution_id: str, timeout_s: float) -> ExecutionState:
        return self.executions.wait_finished(execution_id, timeout_s)

    def cancel(self, execution_id: str, reason: str = "cancelled by request") -> str:
        return self.executions.cancel(ExecutionId.parse(execution_id).value, reason)
