"""The pure retry decisions after a failed attempt."""

from __future__ import annotations

from dolmen.platform.model import RetryPolicy
from dolmen.platform.execution.retry import Finish, RetryAt, after_failure
from dolmen.platform.store.records import Failure, Outcome

POLICY = RetryPolicy(max_attempts=3, initial_backoff_ms=100, max_backoff_ms=150)
TRAP = Failure("trap", "the guest raised ValueError: bad input 42\nTraceback (most recent call last):\nValueError: bad input 42")


def test_a_trap_is_retried_with_backoff_until_max_attempts() -> None:
    """Attempts before the last are retried after the policy's capped backoff; the last one finishes."""
    assert after_failure(POLICY, 1, TRAP, 1_000) == RetryAt(1_100)
    assert after_failure(POLICY, 2, TRAP, 1_000) == RetryAt(1_150)
    decision = after_failure(POLICY, 3, TRAP, 1_000)
    assert isinstance(decision, Finish) and decision.outcome.failure is not None
    assert decision.outcome.failure.kind == "trap"


def test_giving_up_is_noted_on_the_first_line() -> None:
    """The note that attempts ran out goes on the headline, before a traceback that follows it."""
    decision = after_failure(POLICY, 3, TRAP, 1_000)
    assert isinstance(decision, Finish) and decision.outcome.failure is not None
    assert decision.outcome.failure.message == (
        "the guest raised ValueError: bad input 42 (gave up after 3 attempts)\n"
        "Traceback (most recent call last):\nValueError: bad input 42"
    )
    one_line = after_failure(POLICY, 3, Failure("timeout", "ran past 5 ms"), 0)
    assert isinstance(one_line, Finish) and one_line.outcome.failure == Failure("timeout", "ran past 5 ms (gave up after 3 attempts)")


def test_kinds_that_are_not_retried_finish_at_once() -> None:
    """A failure that another attempt cannot change (here a non-determinism) finishes on its first attempt."""
    failure = Failure("non_determinism", "non-determinism at event 3")
    assert after_failure(POLICY, 1, failure, 0) == Finish(Outcome(failure=failure))
