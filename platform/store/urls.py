"""Redis URLs as Dolmen takes them: several nodes of one cluster in one URL, or a server's Unix socket.

`redis://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/DB]`, `rediss://...` for
TLS (see access.py), or `unix:///PATH` for a server on this machine (what the
processes of `platform up` use, see platform/embedded.py). redis-py parses
each single-node URL itself (`Redis.from_url`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.cluster

__all__ = ["host_port", "is_unix", "seed_urls", "tcp_options", "where", "with_every_node"]


def seed_urls(url: str) -> list[str]:
    """`redis://[AUTH@]HOST:PORT,HOST:PORT[/DB]` as one URL per node; a URL of one node as itself.

    Naming several nodes of a cluster lets a process start while one of them is down.
    """
    parts = urlsplit(url)
    auth, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return [url]
    return [urlunsplit(parts._replace(netloc=f"{auth}{at}{host}")) for host in hosts.split(",") if host]


def with_every_node(url: str, client: redis.Redis | redis.RedisCluster) -> str:
    """`url` naming, after its own nodes, every other node the cluster `client` knows (`url` itself for one server).

    `platform up` hands this to the processes it starts and to platform.json:
    a process restarted after the node first named died still finds the cluster.
    """
    if not isinstance(client, redis.RedisCluster):
        return url
    given = ["%s:%d" % host_port(seed) for seed in seed_urls(url)]
    others = sorted({node.name for node in client.get_nodes()} - set(given))
    if not others:
        return url
    parts = urlsplit(url)
    auth, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{auth}{at}{','.join(given + others)}"))


def host_port(url: str) -> tuple[str, int]:
    """`(host, port)` of a single-node TCP URL (127.0.0.1 and 6379 when it names none)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def is_unix(url: str) -> bool:
    """Whether `url` names a server by its Unix socket (`unix:///PATH`)."""
    return urlsplit(url).scheme == "unix"


def tcp_options(url: str) -> dict[str, Any]:
    """Options only a TCP connection takes (redis-py's Unix socket connection refuses them)."""
    return {} if is_unix(url) else {"socket_keepalive": True}


def where(url: str) -> str:
    """The server `url` names, for messages: `HOST:PORT` or `unix:PATH` (as `describe`)."""
    return f"unix:{urlsplit(url).path}" if is_unix(url) else "%s:%d" % host_port(url)
