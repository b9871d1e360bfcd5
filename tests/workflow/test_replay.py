"""The pure replay logic: matching requests against a log, ids, response order, time."""

from __future__ import annotations

from typing import Any

import pytest

from dolmen.platform.errors import NonDeterminismError
from dolmen.platform.store.records import Event
from dolmen.platform.workflow.replay import Replay, Request, describe_request, json_equal

EID = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
DOUBLE = "testing:act/basic@1.0.0.double"


def log(*items: tuple[str, dict[str, Any], int]) -> list[Event]:
    """Events from (type, data, at) triples, after a `created` event at time 1000."""
    events = [Event(0, "created", {"ffqn": "t:w/f@1.0.0.run", "params": [1]}, 1000, "1-0")]
    for event_type, data, at in items:
        events.append(Event(len(events), event_type, data, at, f"{len(events) + 1}-0"))
    return events


def child(n: int, params: list[Any], join_set: str | None = None, ffqn: str = DOUBLE) -> dict[str, Any]:
    return {"join_set": join_set, "child_id": f"{EID}.{n}", "ffqn": ffqn, "params": params}


def request(n: int, params: list[Any], join_set: str | None = None, ffqn: str = DOUBLE) -> Request:
    return Request("child_submitted", child(n, params, join_set, ffqn))


def response(n: int, result: Any, join_set: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"child_id": f"{EID}.{n}", "result": result}
    if join_set is not None:
        data["join_set"] = join_set
    return data


def test_a_logged_request_matches_and_a_new_one_is_reported_as_new() -> None:
    """The same request as the log is answered from it; past the log's end requests are new."""
    replay = Replay(EID, log(("child_submitted", child(1, [1]), 1001)))
    assert replay.replaying
    matched = replay.request(request(1, [1]))
    assert matched is not None and matched.index == 1
    assert not replay.replaying
    assert replay.request(request(2, [2])) is None


@pytest.mark.parametrize(
    ("asked", "logged_part", "asked_part"),
    [
        (request(1, [2]), "params=[1]", "params=[2]"),
        (request(1, [1], ffqn="testing:act/basic@1.0.0.triple"), "double", "triple"),
        (request(1, [1], join_set="g1"), "child_submitted(", 'join_set="g1"'),
        (Request("delay_requested", {"join_set": None, "duration_ms": 5}), "child_submitted(", "delay_requested("),
    ],
)
def test_any_difference_is_non_determinism_naming_the_event(asked: Request, logged_part: str, asked_part: str) -> None:
    """Another function, params, join set or request type fails with the index and both requests."""
    replay = Replay(EID, log(("child_submitted", child(1, [1]), 1001)))
    with pytest.raises(NonDeterminismError) as info:
        replay.request(asked)
    error = info.value
    assert error.event_index == 1
    assert logged_part in (error.logged or "") and asked_part in (error.requested or "")
    assert str(error).startswith("non-determinism at event 1: the log holds child_submitted(")


def test_times_and_derived_ids_are_not_part_of_a_request_identity() -> None:
    """A delay is the same request whatever its computed `until`; child ids follow from order."""
    replay = Replay(EID, log(("delay_requested", {"join_set": None, "delay_id": f"{EID}.d1", "duration_ms": 50, "until": 2000}, 1001)))
    assert replay.request(Request("delay_requested", {"join_set": None, "delay_id": "other", "duration_ms": 50, "until": 9})) is not None


def test_ids_are_derived_from_the_position_of_requests() -> None:
    """Children, scheduled executions, delays and generated join sets are numbered in request order."""
    replay = Replay(EID, log())
    assert replay.next_child_id() == f"{EID}.1" and replay.next_delay_id() == f"{EID}.d1"
    assert replay.next_join_set_name() == "g1"
    replay.request(Request("join_set_created", {"join_set": "g1", "closing": "complete"}))
    replay.request(request(1, [1]))
    replay.request(Request("scheduled", {"ffqn": DOUBLE, "params": [2], "schedule": "now"}))
    replay.request(Request("delay_requested", {"join_set": "g1", "duration_ms": 1}))
    assert replay.next_child_id() == f"{EID}.3" and replay.next_delay_id() == f"{EID}.d2"
    assert replay.next_join_set_name() == "g2"


def test_join_set_responses_come_in_log_order_once() -> None:
    """take_next hands out a join set's responses in log order, each once, ignoring other sets."""
    replay = Replay(
        EID,
        log(
            ("response", response(2, 20, "g1"), 1005),
            ("response", response(9, 90, "g2"), 1006),
            ("response", response(1, 10, "g1"), 1007),
        ),
    )
    first, second = replay.take_next("g1"), replay.take_next("g1")
    assert first is not None and first.data["result"] == 20
    assert second is not None and second.data["result"] == 10
    assert replay.take_next("g1") is None
    replay.extend([Event(4, "response", response(3, 30, "g1"), 1008, "5-0")])
    third = replay.take_next("g1")
    assert third is not None and third.data["result"] == 30
    assert replay.is_consumed(f"{EID}.1") and not replay.is_consumed(f"{EID}.9")


def test_logical_time_is_the_latest_processed_event() -> None:
    """now() moves with matched requests and consumed responses, never backwards, not with unread ones."""
    replay = Replay(EID, log(("child_submitted", child(1, [1]), 1010), ("response", response(1, 2), 1030)))
    assert replay.now_ms == 1000
    replay.request(request(1, [1]))
    assert replay.now_ms == 1010
    replay.take_response(f"{EID}.1")
    assert replay.now_ms == 1030
    replay.tick(1020)
    assert replay.now_ms == 1030


def test_leftover_requests_are_reported_when_the_code_returns() -> None:
    """A logged request the code never asked for is a divergence naming it."""
    replay = Replay(EID, log(("child_submitted", child(1, [1]), 1001), ("child_submitted", child(2, [2]), 1002)))
    replay.request(request(1, [1]))
    error = replay.leftover_error()
    assert error is not None and error.event_index == 2 and error.requested == "return"
    replay.request(request(2, [2]))
    assert replay.leftover_error() is None


def test_cancellation_params_and_finished_are_read_from_the_log() -> None:
    """The created params, a cancellation request and the finished event are found in the log."""
    replay = Replay(EID, log(("finished", {"result": 3}, 1002)))
    assert replay.params == [1] and not replay.cancel_requested
    finished = replay.finished
    assert finished is not None and finished.data == {"result": 3}
    replay.extend([Event(2, "cancel_requested", {"reason": "x"}, 1003, "3-0")])
    assert replay.cancel_requested


def test_json_equality_is_strict_about_types_but_not_key_order() -> None:
    """1, 1.0 and true are different values; objects with the same members are equal."""
    assert json_equal({"a": [1, {"b": "x"}], "c": None}, {"c": None, "a": [1, {"b": "x"}]})
    assert not json_equal(1, 1.0) and not json_equal(1, True) and not json_equal([1], [1, 2]) and not json_equal({"a": 1}, {"b": 1})


def test_requests_are_described_by_their_identity() -> None:
    """Error messages show a request's type and identifying fields in compact JSON."""
    assert describe_request("child_submitted", child(4, [{"k": 1}], "g2")) == (
        'child_submitted(join_set="g2", ffqn="testing:act/basic@1.0.0.double", params=[{"k":1}])'
    )
    assert describe_request("join_next", {"join_set": "g1"}) == 'join_next(join_set="g1")'
