"""`plain_pipeline.execute` answers as redis-py's `Pipeline.execute(raise_on_error=False)`, on a real Valkey.

Also through a real TCP fault proxy: a cut connection is re-sent on a new
one, and an unreachable server raises redis-py's `ConnectionError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from dolmen.platform.store import plain_pipeline
from dolmen.platform.store.connection import connect
from dolmen.platform.store.scripts import Scripts
from dolmen.platform.store.connection import is_cluster
from tests.support.faultproxy import FaultProxy, proxy_to

@pytest.fixture(autouse=True)
def single_server(redis_url: str) -> None:
    if is_cluster(redis_url):
        pytest.skip("a cluster's pipelines go through redis-py's cluster pipeline, not plain_pipeline")


ZADD = "return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])"


def queue_mixed(pipe: Any, sha: str) -> None:
    """Script calls, commands with and without redis-py callbacks, options, and two error replies."""
    pipe.execute_command("EVALSHA", sha, 1, "pp:z", 1, "a")
    pipe.zadd("pp:z", {"b": 2.5})
    pipe.zrangebyscore("pp:z", "-inf", "+inf", withscores=True)
    pipe.hset("pp:h", mapping={"f": "v", "g": 7})
    pipe.hgetall("pp:h")
    pipe.incr("pp:z")  # WRONGTYPE: an error reply in place
    pipe.execute_command("EVALSHA", "0" * 40, 0)  # NOSCRIPT
    pipe.xadd("pp:s", {"id": "x"})
    pipe.xlen("pp:s")
    pipe.set("pp:k", "v", get=True)
    pipe.exists("pp:k", "pp:none")
    pipe.lrange("pp:none", 0, -1)
    pipe.execute_command("SCRIPT EXISTS", sha)


def comparable(replies: list[Any]) -> list[Any]:
    out: list[Any] = []
    for reply in replies:
        if isinstance(reply, Exception):
            out.append((type(reply).__name__, str(reply).split(" of pipeline caused error: ")[-1]))
        elif isinstance(reply, bytes) and reply.count(b"-") == 1 and reply[:1].isdigit():
            out.append("stream-id")  # XADD's id differs between the two runs
        else:
            out.append(reply)
    return out


def test_replies_are_redis_pys_own(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        sha = client.script_load(ZADD)
        ours = client.pipeline(transaction=False)
        queue_mixed(ours, sha)
        got = plain_pipeline.execute(ours)
        client.delete("pp:z", "pp:h", "pp:s", "pp:k")
        theirs = client.pipeline(transaction=False)
        queue_mixed(theirs, sha)
        expected = theirs.execute(raise_on_error=False)
        assert comparable(got) == comparable(expected)
        assert got[2] == [(b"a", 1.0), (b"b", 2.5)] and got[4] == {b"f": b"v", b"g": b"7"}
        assert isinstance(got[5], redis.ResponseError) and "WRONGTYPE" in str(got[5])
        assert ours.command_stack == [], "the pipeline is reset, ready for the next round trip"
        assert plain_pipeline.execute(ours) == []
    finally:
        client.close()


def test_a_script_pipeline_uses_it_on_a_single_server(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        scripts = Scripts(client)
        pipe = scripts.pipeline()
        assert pipe.ordered
        pipe.zadd("pp:z2", {"m": 1})
        pipe.zrange("pp:z2", 0, -1, withscores=True)
        assert pipe.execute() == [1, [(b"m", 1.0)]]
        assert client.connection_pool._created_connections <= 2, "connections come from the client's pool, and go back"
    finally:
        client.close()


def through_proxy(redis_url: str, act: Callable[[FaultProxy, redis.Redis], None]) -> None:
    with proxy_to(redis_url) as proxy:
        client = connect(proxy.url)
        try:
            act(proxy, client)
        finally:
            client.close()


def test_a_cut_connection_is_sent_again_on_a_new_one(redis_url: str) -> None:
    def act(proxy: FaultProxy, client: redis.Redis) -> None:
        sha = client.script_load(ZADD)
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("EVALSHA", sha, 1, "pp:cut", 1, "a")
        assert plain_pipeline.execute(pipe) == [1]
        proxy.cut_all()  # the pooled connection is dead; the next round trip finds out and retries
        pipe.execute_command("EVALSHA", sha, 1, "pp:cut", 2, "b")
        pipe.zcard("pp:cut")
        assert plain_pipeline.execute(pipe) == [1, 2]

    through_proxy(redis_url, act)


def test_a_lost_reply_is_sent_again(redis_url: str) -> None:
    def act(proxy: FaultProxy, client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        assert plain_pipeline.execute(pipe) == [True]
        proxy.drop_next_reply(b"pp:lost")
        pipe.sadd("pp:lost", "x")  # SADD again answers 0: the first one ran, its reply was lost
        pipe.smembers("pp:lost")
        replies = plain_pipeline.execute(pipe)
        assert replies[1] == {b"x"}

    through_proxy(redis_url, act)


def test_an_unreachable_server_raises_redis_pys_connection_error(redis_url: str) -> None:
    def act(proxy: FaultProxy, client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        assert plain_pipeline.execute(pipe) == [True]
        proxy.stop()
        pipe.ping()
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            plain_pipeline.execute(pipe)
        assert pipe.command_stack == []

    through_proxy(redis_url, act)


def test_execute_any_takes_a_single_servers_pipeline_plain(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = connect(redis_url)
    try:
        used: list[int] = []
        plain = plain_pipeline.execute
        monkeypatch.setattr(plain_pipeline, "execute", lambda pipe, connection=None: used.append(len(pipe.command_stack)) or plain(pipe, connection))
        pipe = client.pipeline(transaction=False)
        pipe.incr("pp:n")
        pipe.incr("pp:n")
        assert plain_pipeline.execute_any(pipe) == [1, 2]
        assert used == [2]
    finally:
        client.close()


def test_a_held_connection_serves_every_round_trip_and_connects_again_after_a_cut(redis_url: str) -> None:
    """`HeldConnection`: one connection for all of its holder's round trips (the server sees one client id), a cut
    one re-sent on a new connection as the pool's are, and `close` hands it back to the pool."""

    def act(proxy: FaultProxy, client: redis.Redis) -> None:
        held = plain_pipeline.HeldConnection(client)
        connection = held.get()
        assert connection is not None and held.get() is connection
        pipe = client.pipeline(transaction=False)
        ids: set[int] = set()
        for _ in range(3):
            pipe.client_id()
            ids |= set(plain_pipeline.execute(pipe, connection))
        assert len(ids) == 1, "every round trip went on the held connection"
        proxy.cut_all()
        pipe.sadd("pp:held", "x")
        pipe.client_id()
        replies = plain_pipeline.execute(pipe, connection)
        assert replies[1] not in ids, "sent again on a new connection"
        pipe.smembers("pp:held")
        assert plain_pipeline.execute(pipe, held.get()) == [{b"x"}]
        assert connection not in client.connection_pool._available_connections
        held.close()
        assert connection in client.connection_pool._available_connections
        assert held.get() is not None, "used again after close, it takes a connection again"
        held.close()

    through_proxy(redis_url, act)


def test_a_held_connection_that_raised_is_left_closed_and_connects_at_its_next_use(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round trip that raised may have left replies unread: the held connection is dropped, never reused as it is."""
    client = connect(redis_url)
    held = plain_pipeline.HeldConnection(client)
    try:
        connection = held.get()
        assert connection is not None
        pipe = client.pipeline(transaction=False)
        pipe.client_id()
        [first] = plain_pipeline.execute(pipe, connection)

        def interrupted(*args: Any) -> list[Any]:
            raise KeyboardInterrupt  # not a connection error: not retried, raised to the caller

        with monkeypatch.context() as patch:
            patch.setattr(plain_pipeline, "_round_trip", interrupted)
            pipe.ping()
            with pytest.raises(KeyboardInterrupt):
                plain_pipeline.execute(pipe, connection)
        assert connection._sock is None, "dropped, with whatever it had unread"
        pipe.client_id()
        [second] = plain_pipeline.execute(pipe, connection)
        assert second != first
    finally:
        held.close()
        client.close()
