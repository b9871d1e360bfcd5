"""Pure decisions: what happens after an attempt fails or returns `err`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model import RetryPolicy
from ..store.records import Failure, Outcome


# Failures worth another attempt: the guest trapped or ran out of time, the
# runner itself failed around it (a bug, not the guest's doing), or a secret the
# activity needs was not available on that runner (it may be provided meanwhile),
# or an external worker reported a failure it did not call final (see `platform.external`).
RETRIED_KINDS = frozenset({"trap", "timeout", "runner_error", "secret_unavailable", "worker_error"})


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Try again at `at_ms` (ms since the epoch)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Finish:
    """Finish the execution with this outcome."""

    outcome: Outcome


def after_failure(policy: RetryPolicy, attempt: int, failure: Failure, now_ms: int) -> RetryAt | Finish:
    """A failure in attempt `attempt` (1-based): retry with backoff while attempts remain, if its kind is retried.

    Retried kinds are `RETRIED_KINDS`; the delay is `RetryPolicy.backoff_ms`.
    Giving up after the last attempt adds "(gave up after N attempts)" to the message.
    """
    if failure.kind in RETRIED_KINDS and attempt < policy.max_attempts:
        return RetryAt(now_ms + policy.backoff_ms(attempt))
    if attempt >= policy.max_attempts and policy.max_attempts > 1:
        # On the first line: a workflow's trap message goes on with the guest's traceback.
        headline, newline, rest = failure.message.partition("\n")
        message = f"{headline} (gave up after {attempt} attempts){newline}{rest}"
        return Finish(Outcome(failure=Failure(failure.kind, message)))
    return Finish(Outcome(failure=failure))


def after_return(policy: RetryPolicy, attempt: int, value: Any, returns_result: bool, now_ms: int) -> RetryAt | Finish:
    """A returned value (canonical JSON): final, unless it is an `err` (`{"err": ...}` of a function that returns a
    `result`, `returns_result`) and the policy retries those while attempts remain."""
    is_err = returns_result and isinstance(value, dict) and "err" in value
    if is_err and policy.retry_on_err and attempt < policy.max_attempts:
        return RetryAt(now_ms + policy.backoff_ms(attempt))
    return Finish(Outcome(value=value))


def after_lock(policy: RetryPolicy, attempt: int) -> Finish | None:
    """Attempt `attempt` (1-based) was just locked: give up when lost attempts used them all up.

    Attempts that fail are decided on by `after_failure`, which never lets
    the count pass `max_attempts`; only attempts lost with their runner
    (killed, out of memory, hung past its lease: logged as `attempt_lost`)
    get it there, so an execution whose runners keep dying ends instead of
    looping.
    """
    if attempt <= policy.max_attempts:
        return None
    message = (
        f"attempt {attempt - 1} was lost with its runner (it was killed, ran out of memory, or hung past "
        f"its lease) and max_attempts is {policy.max_attempts}; the log's attempt_lost events show each loss"
    )
    return Finish(Outcome(failure=Failure("crashed", message)))
