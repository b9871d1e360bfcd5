"""How a finished execution ended, in the words filters use: `ok`, `err`, `continued`, or a failure's kind.

One vocabulary for every filter by outcome: `GET /v1/executions?outcome=`,
`platform executions list --outcome`, the dashboard's status filter and
`platform executions purge --status` (README "Event log" lists the kinds).
"""

from __future__ import annotations

from .records import Outcome

# The kinds a `failure` is written with (README "Event log"), but `failed`: ExecutionError's own kind, which the
# filter `failed` (any failure) takes in.
FAILURE_KINDS = (
    "trap", "timeout", "cancelled", "non_determinism", "child_failed", "crashed", "value_too_large",
    "secret_unavailable", "worker_error", "runner_error", "history_limit",
)  # fmt: skip
# What a filter by outcome may name: a returned value, an `err` result, a continue-as-new, any failure
# (`failed`), or one failure kind.
OUTCOMES = ("ok", "err", "continued", "failed", *FAILURE_KINDS)


def outcome_label(outcome: Outcome | None) -> str:
    """`ok` for a returned value, `err` for an `err` result, `continued` for a workflow that continued as new, else the
    failure's kind; "" when unfinished."""
    if outcome is None:
        return ""
    if outcome.failure is not None:
        return outcome.failure.kind
    if outcome.continued_as is not None:
        return "continued"
    value = outcome.value
    return "err" if isinstance(value, dict) and set(value) == {"err"} else "ok"


def outcome_matches(outcome: Outcome | None, wanted: str) -> bool:
    """Whether `outcome` is what `wanted` (one of OUTCOMES) names: `failed` is any failure, the others their label."""
    if outcome is None:
        return False
    if wanted == "failed":
        return outcome.failure is not None
    return outcome_label(outcome) == wanted


__all__ = ["FAILURE_KINDS", "OUTCOMES", "outcome_label", "outcome_matches"]
