"""What a client is told when a write's master heard from too few replicas in time (`--wait-replicas`).

The write happened: the answer says so, that it could be lost if that master
failed now, and what is safe to do next. That depends on what was written:
an invocation with an Idempotency-Key is retried as it is; one without must
not be (a retry would start a second execution), so it is looked up by its
id instead; a cancel is posted again.

An Idempotency-Key whose binding was not confirmed creates nothing yet: on a
cluster the key and the execution may live on different masters, and a
failover that lost the binding but kept the execution would let the retry
start a second one.
"""

from __future__ import annotations

from ..platform.errors import ReplicaWaitError

_RISK = "it could be lost if that master fails now"
_CHECK = "if this goes on, check that master's replicas (INFO replication on it)"


def unconfirmed_invocation(exc: ReplicaWaitError, execution_id: str | None, key: str | None) -> ReplicaWaitError:
    """`exc` told for an invocation; `execution_id` None when the claim of its Idempotency-Key fell short."""
    if execution_id is None:
        return exc.retold(
            f"this request's Idempotency-Key was bound, but on the master at {exc.where} {exc.shortfall}: {_RISK}. "
            f"This request created no execution: retry with the same Idempotency-Key, which is idempotent; {_CHECK}"
        )
    # `where` is the master of whichever of its writes fell short: on a cluster, its dirty mark's may be another.
    accepted = f"execution {execution_id} was accepted, but on the master at {exc.where} {exc.shortfall}: {_RISK}."
    if key is not None:
        return exc.retold(
            f"{accepted} Retry with the same Idempotency-Key: that is idempotent, and answers with this execution "
            f"once its replicas confirm it; {_CHECK}",
            execution_id=execution_id,
        )
    return exc.retold(
        f"{accepted} Do not simply retry: without an Idempotency-Key a retry starts a second execution; "
        f"GET /v1/executions/{execution_id} shows this one (send an Idempotency-Key to make retries safe); {_CHECK}",
        execution_id=execution_id,
    )


def unconfirmed_cancel(exc: ReplicaWaitError, execution_id: str) -> ReplicaWaitError:
    """`exc` told for a cancel (it waits for the replicas of every master: see `Gateway.cancel`)."""
    return exc.retold(
        f"the cancel of execution {execution_id} was recorded, but on the master at {exc.where} {exc.shortfall}: "
        f"{_RISK}. POST the cancel again, which is safe; {_CHECK}",
        execution_id=execution_id,
    )


def unconfirmed_result(exc: ReplicaWaitError, execution_id: str) -> ReplicaWaitError:
    """`exc` told for a stub's supplied result (confirmed as a cancel is)."""
    return exc.retold(
        f"the result of execution {execution_id} was recorded, but on the master at {exc.where} {exc.shortfall}: "
        f"{_RISK}. PUT the same result again, which is safe; {_CHECK}",
        execution_id=execution_id,
    )


def unconfirmed_worker_write(exc: ReplicaWaitError, execution_id: str) -> ReplicaWaitError:
    """`exc` told for an external worker's result or failure (confirmed as a cancel is)."""
    return exc.retold(
        f"the worker's write for execution {execution_id} was recorded, but on the master at {exc.where} "
        f"{exc.shortfall}: {_RISK}. Send it again with the same token: a 409 `lease_lost` with reason `finished` "
        f"or `retrying` then means it held; {_CHECK}",
        execution_id=execution_id,
    )


def unconfirmed_pause(exc: ReplicaWaitError, execution_id: str, action: str) -> ReplicaWaitError:
    """`exc` told for a pause or resume (confirmed as a cancel is)."""
    return exc.retold(
        f"the {action} of execution {execution_id} was recorded, but on the master at {exc.where} {exc.shortfall}: "
        f"{_RISK}. POST the {action} again, which is safe; {_CHECK}",
        execution_id=execution_id,
    )
