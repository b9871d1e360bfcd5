"""Priority classes: `high`, `normal` (the default) and `low`, given at invocation, inherited by what it starts.

An execution's class is recorded in its `created` event and state hash and
never changes; the children of a workflow, the executions it schedules and
the one it continues as carry the same class. Each class of a function has
queue streams of its own, named by `queue_name` (`FFQN` for normal,
`FFQN!high`, `FFQN!low`; `!` is in no function name). Runners and external
workers' claims read the queues of a higher class first and take lower ones
only for the threads left (strict priority between classes, first in first
out within one; Temporal's task-queue priorities and Sidekiq's strict queue
order work alike). A class other than normal is named in `dolmen:priorities`
the first time an execution of it is queued: until then readers read the
normal queues alone, as before classes existed.
"""

from __future__ import annotations

from typing import Literal

from .errors import UsageError

Priority = Literal["high", "normal", "low"]
# Highest first: the order in which readers take them.
CLASSES: tuple[Priority, ...] = ("high", "normal", "low")
DEFAULT: Priority = "normal"
SEPARATOR = "!"


def check_priority(value: object) -> Priority:
    """`value` as a class, or a `UsageError` naming the classes (the HTTP API names `priority` as the bad field)."""
    if value in CLASSES:
        return value  # type: ignore[return-value]
    raise UsageError(f"priority must be one of high, normal, low; got {value!r}", path="priority")


def queue_name(ffqn: str, priority: str = DEFAULT) -> str:
    """The name of `ffqn`'s queues of class `priority` (what `Shards.queue` makes keys of)."""
    return ffqn if priority == DEFAULT else f"{ffqn}{SEPARATOR}{priority}"


def function_of(name: str) -> str:
    """The function whose queue `name` is (a name from `queue_name`)."""
    return name.split(SEPARATOR, 1)[0]


def class_of(name: str) -> Priority:
    """The class of queue `name`."""
    _, _, priority = name.partition(SEPARATOR)
    return priority or DEFAULT  # type: ignore[return-value]


def by_class(ffqns: list[str], used: frozenset[str]) -> list[list[str]]:
    """The queue names of `ffqns`, one list per class in use (highest first); normal is always in use."""
    return [[queue_name(f, c) for f in ffqns] for c in CLASSES if c == DEFAULT or c in used]


__all__ = ["CLASSES", "DEFAULT", "Priority", "by_class", "check_priority", "class_of", "function_of", "queue_name"]
