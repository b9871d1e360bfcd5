"""A process waits for any node of the store it was given before it connects (`connection.wait_for_store`).

`connect` asks a node whether it is a cluster's: a client made while every node was down would be a
single server's. With several nodes (`redis://A,B`) the one that comes back first is enough.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dolmen.platform.errors import StoreAccessError, StoreUnavailableError
from dolmen.platform.store.connection import wait_for_store
from tests.support.servers import ValkeyForTests, ephemeral_port


def test_a_node_that_answers_among_dead_ones_is_enough(own_valkey: ValkeyForTests) -> None:
    dead = ephemeral_port()
    started = time.monotonic()
    wait_for_store(f"redis://127.0.0.1:{dead},127.0.0.1:{own_valkey.port}", timeout_s=10)
    assert time.monotonic() - started < 5


def test_it_waits_for_whichever_node_comes_back_first_not_only_the_first_named(tmp_path: Path) -> None:
    first, second = ephemeral_port(), ephemeral_port()
    later = ValkeyForTests(tmp_path / "second", port=second)
    starter = threading.Timer(1.0, later.start)
    starter.start()
    try:
        wait_for_store(f"redis://127.0.0.1:{first},127.0.0.1:{second}", timeout_s=30)
        assert later.server is not None
    finally:
        starter.join()
        later.stop()


def test_no_node_answering_names_every_node_tried() -> None:
    first, second = ephemeral_port(), ephemeral_port()
    with pytest.raises(StoreUnavailableError, match=rf"no node of redis://127.0.0.1:{first},127.0.0.1:{second} answers") as failed:
        wait_for_store(f"redis://127.0.0.1:{first},127.0.0.1:{second}", timeout_s=0.5)
    assert f"127.0.0.1:{first}" in str(failed.value) and f"127.0.0.1:{second}" in str(failed.value).split("answers", 1)[1]


def test_a_node_that_refuses_this_process_stops_the_wait_at_once(tmp_path: Path) -> None:
    """A wrong password is no outage to wait out (redis-py's AuthenticationError is a ConnectionError)."""
    guarded = ValkeyForTests(tmp_path / "guarded", password="right")
    guarded.start()
    try:
        started = time.monotonic()
        with pytest.raises(StoreAccessError, match="refused to let this process in"):
            wait_for_store(f"redis://{ValkeyForTests.USER}:wrong@127.0.0.1:{guarded.port}", timeout_s=30)
        assert time.monotonic() - started < 5
    finally:
        guarded.stop()
