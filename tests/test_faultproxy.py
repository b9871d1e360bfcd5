"""The fault-injection proxy in front of a real Valkey: forwarding, lost replies, cuts, latency."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from dolmen.platform.store.connection import connect
from tests.support.faultproxy import FaultProxy, proxy_to
from tests.support.polling import wait_for
from tests.support.servers import ValkeyForTests


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    """A proxy in front of the (flushed) session Valkey."""
    with proxy_to(redis_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def direct(redis_url: str) -> Iterator[redis.Redis]:
    """A client straight to Valkey, bypassing the proxy: what the server really holds."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def no_retry_client(proxy: FaultProxy) -> redis.Redis:
    """A client through the proxy that never re-sends a command."""
    return redis.Redis.from_url(proxy.url, retry=Retry(NoBackoff(), 0), retry_on_error=[])


def test_forwards_commands(proxy: FaultProxy, direct: redis.Redis) -> None:
    """SET and GET through the proxy reach the real server; counters follow the traffic."""
    client = redis.Redis.from_url(proxy.url)
    assert client.set("k", "v")
    assert client.get("k") == b"v"
    assert direct.get("k") == b"v"
    client.close()
    assert proxy.connections_accepted == 1
    assert proxy.bytes_to_server > 0 and proxy.bytes_to_client > 0
    assert proxy.cuts == 0 and proxy.dropped_replies == 0


def test_dropped_reply_after_the_command_ran(proxy: FaultProxy, direct: redis.Redis) -> None:
    """The lost reply: INCR runs on the server, the client only sees the connection close."""
    client = no_retry_client(proxy)
    assert client.ping()
    proxy.drop_next_reply(b"INCR")
    with pytest.raises(RedisConnectionError):
        client.incr("counter")
    assert direct.get("counter") == b"1"  # it ran; only the reply was lost
    assert proxy.dropped_replies == 1
    assert client.incr("counter") == 2  # one-shot: a new connection works
    assert proxy.connections_accepted == 2
    assert proxy.dropped_replies == 1
    client.close()


def test_default_client_resends_a_command_whose_reply_was_lost(proxy: FaultProxy, direct: redis.Redis) -> None:
    """redis.Redis(host, port) retries ConnectionErrors by default (10 times in redis-py 8), so it
    re-sends the INCR: the command runs twice. This is the duplicate the platform must survive."""
    client = redis.Redis(host="127.0.0.1", port=proxy.port)
    retry = client.get_retry()
    assert retry is not None and retry.get_retries() > 0
    proxy.drop_next_reply(b"INCR")
    assert client.incr("counter") == 2  # the client never saw 1
    assert direct.get("counter") == b"2"
    assert proxy.dropped_replies == 1
    client.close()


def test_from_url_client_does_not_resend(proxy: FaultProxy, direct: redis.Redis) -> None:
    """redis.Redis.from_url(url) without retry arguments gets Retry(NoBackoff(), 0): no re-send."""
    client = redis.Redis.from_url(proxy.url)
    proxy.drop_next_reply(b"INCR")
    with pytest.raises(RedisConnectionError):
        client.incr("counter")
    assert direct.get("counter") == b"1"
    client.close()


def test_platform_client_resends_once(proxy: FaultProxy, direct: redis.Redis) -> None:
    """The platform's connect() (from_url with retry_on_timeout=True) gets Retry(NoBackoff(), 1),
    whose errors include ConnectionError: a lost reply makes it run the command a second time."""
    client = connect(proxy.url)
    proxy.drop_next_reply(b"INCR")
    assert client.incr("counter") == 2
    assert direct.get("counter") == b"2"
    assert proxy.dropped_replies == 1
    client.close()


def test_drop_matches_only_the_given_command(proxy: FaultProxy, direct: redis.Redis) -> None:
    """Commands not containing the match pass; the armed drop waits for the matching one."""
    client = no_retry_client(proxy)
    proxy.drop_next_reply(b"EVALSHA")
    assert client.set("a", "1")
    assert client.incr("a") == 2
    sha = client.script_load("return redis.call('INCR', KEYS[1])")
    assert proxy.dropped_replies == 0
    with pytest.raises(RedisConnectionError):
        client.evalsha(sha, 1, "a")
    assert direct.get("a") == b"3"
    assert proxy.dropped_replies == 1
    client.close()


def test_drop_without_match_takes_the_next_request(proxy: FaultProxy, direct: redis.Redis) -> None:
    """drop_next_reply() with no match fires on whatever the client sends next."""
    client = no_retry_client(proxy)
    assert client.ping()
    proxy.drop_next_reply()
    with pytest.raises(RedisConnectionError):
        client.set("k", "v")
    assert direct.get("k") == b"v"
    assert proxy.dropped_replies == 1
    client.close()


def test_cut_all_breaks_a_command_in_flight_then_reconnects(proxy: FaultProxy, direct: redis.Redis) -> None:
    """A blocked BLPOP gets a ConnectionError when its connection is cut; the next call reconnects."""
    client = no_retry_client(proxy)
    errors: list[BaseException] = []

    def block() -> None:
        try:
            client.blpop(["nothing"], timeout=5)
        except RedisConnectionError as error:
            errors.append(error)

    blocker = threading.Thread(target=block)
    blocker.start()
    wait_for(lambda: direct.info("clients")["blocked_clients"] == 1, timeout=5, what="BLPOP blocked")
    assert proxy.cut_all() == 1
    blocker.join(timeout=5)
    assert not blocker.is_alive() and len(errors) == 1
    assert proxy.cuts == 1
    assert client.ping()  # a fresh connection
    assert proxy.connections_accepted == 2
    client.close()


def test_latency_delays_each_direction(proxy: FaultProxy) -> None:
    """With 0.2 s latency a PING takes at least 0.2 s (0.2 s each way, in fact); 0 clears it."""
    client = redis.Redis.from_url(proxy.url)
    assert client.ping()
    proxy.set_latency(0.2)
    started = time.monotonic()
    assert client.ping()
    assert time.monotonic() - started >= 0.2
    proxy.set_latency(0)
    assert client.ping()
    client.close()


def test_cut_randomly_cuts_until_stopped(proxy: FaultProxy) -> None:
    """At a high rate connections get cut; after stop_cutting no more cuts happen."""
    client = redis.Redis.from_url(proxy.url)  # the pool replaces a connection found cut while idle
    proxy.cut_randomly(100.0, seed=7)
    deadline = time.monotonic() + 5
    while proxy.cuts == 0 and time.monotonic() < deadline:
        try:
            client.ping()
        except RedisConnectionError:
            pass
        time.sleep(0.01)
    proxy.stop_cutting()
    assert proxy.cuts > 0
    cuts = proxy.cuts
    for _ in range(5):
        assert client.ping()
    time.sleep(0.1)
    assert proxy.cuts == cuts
    client.close()


def test_pause_holds_traffic_until_resume(proxy: FaultProxy) -> None:
    """While paused a PING gets no answer; resume delivers it."""
    client = redis.Redis.from_url(proxy.url)
    assert client.ping()
    proxy.pause()
    answers: list[bool] = []
    pinger = threading.Thread(target=lambda: answers.append(bool(client.ping())))
    pinger.start()
    time.sleep(0.2)
    assert answers == []
    proxy.resume()
    pinger.join(timeout=5)
    assert answers == [True]
    client.close()


def test_held_replication_is_what_the_replica_lacks(tmp_path: Path) -> None:
    """While replication is held the master answers writes its replica never gets; release hands them over, and the replica catches up."""
    master = ValkeyForTests(tmp_path / "master", repl_diskless_sync_delay="0")
    master.start()
    try:
        with FaultProxy("127.0.0.1", master.port) as proxy:
            replica = ValkeyForTests(tmp_path / "replica", replicaof=f"127.0.0.1 {proxy.port}")
            replica.start()
            try:
                m, r = redis.Redis.from_url(master.url), redis.Redis.from_url(replica.url)
                m.set("before", 1)
                wait_for(lambda: r.get("before") == b"1", what="the first write on the replica")
                proxy.hold_replication()
                m.set("during", 2)  # answered by the master
                offset = m.info("replication")["master_repl_offset"]
                wait_for(lambda: r.info("replication")["slave_repl_offset"] + proxy.held_bytes() == offset, what="all held")
                assert r.get("during") is None
                held = proxy.release_replication()
                assert b"during" in held and b"before" not in held
                wait_for(lambda: r.get("during") == b"2", what="the replica to ask again and catch up")
                m.close()
                r.close()
            finally:
                replica.stop()
    finally:
        master.stop()


def test_half_close_is_passed_on() -> None:
    """A client's EOF reaches the upstream while the reply still flows back."""
    listener = socket.create_server(("127.0.0.1", 0))
    upstream_port = listener.getsockname()[1]

    def echo_after_eof() -> None:
        conn, _ = listener.accept()
        with conn:
            received = b""
            while chunk := conn.recv(4096):
                received += chunk
            conn.sendall(received[::-1])

    echo = threading.Thread(target=echo_after_eof)
    echo.start()
    with FaultProxy("127.0.0.1", upstream_port) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(b"hello")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        assert reply == b"olleh"
    echo.join(timeout=5)
    listener.close()


def test_stop_with_open_connections(redis_url: str) -> None:
    """stop() closes open connections and ends the proxy's thread; the client then fails."""
    url = urlparse(redis_url)
    assert url.hostname is not None and url.port is not None
    proxy = FaultProxy(url.hostname, url.port).start()
    clients = [no_retry_client(proxy) for _ in range(3)]
    for client in clients:
        assert client.ping()
    proxy.set_latency(0.5)
    proxy.stop()
    with pytest.raises(RedisConnectionError):
        clients[0].ping()
    for client in clients:
        client.close()
