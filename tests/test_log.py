"""`platform.log.bound`: log context for a block, restored exactly afterwards."""

from __future__ import annotations

import threading

import pytest
import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars
from structlog.testing import capture_logs

from dolmen.platform.log import bound


@pytest.fixture(autouse=True)
def clean_context() -> None:
    clear_contextvars()


def test_the_block_logs_with_the_values_and_the_previous_ones_come_back() -> None:
    bind_contextvars(execution_id="parent", ffqn="a:b/c@1.0.0.f")
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        with bound(execution_id="child", attempt=2):
            structlog.get_logger().info("inside")
            with bound(execution_id="grandchild"):
                assert get_contextvars()["execution_id"] == "grandchild"
            assert get_contextvars() == {"execution_id": "child", "ffqn": "a:b/c@1.0.0.f", "attempt": 2}
        structlog.get_logger().info("after")
    assert logs[0]["execution_id"] == "child" and logs[0]["attempt"] == 2
    assert logs[1]["execution_id"] == "parent" and "attempt" not in logs[1]
    assert get_contextvars() == {"execution_id": "parent", "ffqn": "a:b/c@1.0.0.f"}


def test_an_exception_leaves_the_context_as_it_was() -> None:
    with pytest.raises(RuntimeError):
        with bound(execution_id="x"):
            raise RuntimeError("boom")
    assert get_contextvars() == {}


def test_threads_keep_their_own_context() -> None:
    seen: list[dict[str, object]] = []
    with bound(execution_id="main"):
        worker = threading.Thread(target=lambda: seen.append(get_contextvars()))
        worker.start()
        worker.join()
    assert seen == [{}]
