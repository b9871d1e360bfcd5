"""Priority classes: names, checks, and the queue each class's executions go to (platform/priorities.py)."""

from __future__ import annotations

import pytest

from dolmen.platform.errors import UsageError
from dolmen.platform.priorities import by_class, check_priority, class_of, function_of, queue_name

F = "testing:act/basic@1.0.0.double"


def test_each_class_has_queues_of_its_own_and_normal_keeps_the_plain_name() -> None:
    assert queue_name(F) == queue_name(F, "normal") == F
    assert queue_name(F, "high") == f"{F}!high"
    for priority in ("high", "normal", "low"):
        name = queue_name(F, priority)
        assert (function_of(name), class_of(name)) == (F, priority)


def test_readers_take_the_classes_in_use_highest_first() -> None:
    assert by_class([F], frozenset()) == [[F]]
    assert by_class([F, "a:b/c@1.0.0.g"], frozenset({"low", "high"})) == [
        [f"{F}!high", "a:b/c@1.0.0.g!high"],
        [F, "a:b/c@1.0.0.g"],
        [f"{F}!low", "a:b/c@1.0.0.g!low"],
    ]


@pytest.mark.parametrize("value", ["urgent", "HIGH", "", 1, None])
def test_an_unknown_class_names_the_classes(value: object) -> None:
    with pytest.raises(UsageError) as caught:
        check_priority(value)
    assert str(caught.value) == f"priority must be one of high, normal, low; got {value!r}"
    assert caught.value.path == "priority"  # type: ignore[attr-defined]
