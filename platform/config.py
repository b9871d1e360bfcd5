"""Where things live: the data directory, `platform.json`, and how to reach Redis.

`platform up` writes `<data-dir>/platform.json`; every other command run with
the same data directory reads it, so a user never has to pass URLs by hand.
Resolution order for each setting: command-line flag, environment variable,
`platform.json` (ignored once the `platform up` that wrote it is gone), default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, NotFoundError
from .wit.limits import DEFAULT_MAX_VALUE_BYTES, MAX_VALUE_ENV

DEFAULT_DATA_DIR = ".dolmen"
DEFAULT_GATEWAY_PORT = 8400
ENV_HOME = "DOLMEN_HOME"
ENV_REDIS = "DOLMEN_REDIS_URL"
ENV_GATEWAY = "DOLMEN_GATEWAY_URL"
ENV_WAIT_REPLICAS = "DOLMEN_WAIT_REPLICAS"
ENV_WAIT_TIMEOUT_MS = "DOLMEN_WAIT_TIMEOUT_MS"


# Tuning settings read from the environment (documented in README "Running the platform").
ENV_INTS: dict[str, tuple[int, int, str]] = {
    # name: (default, minimum, what it is)
    "DOLMEN_LOCK_TTL_MS": (10_000, 100, "how long a runner's lock lasts without being extended, in ms"),
    "DOLMEN_REPAIR_AFTER_MS": (10_000, 0, "how long an execution may sit unqueued before the repair sweep requeues it, in ms"),
    "DOLMEN_INLINE_HOLD_MS": (100, 0, "how long a direct activity call may run before its request is written on its own, in ms"),
    "DOLMEN_SPARE_INSTANCES": (0, 0, "how many instances per component runners make ahead of time"),
    "DOLMEN_GROUP_COMMIT": (1, 0, "the switch that sends a runner's concurrent writes in shared pipelines (1) or one by one (0)"),
    "DOLMEN_DIRECT_EFFECTS": (1, 0, "the switch that lets write scripts on one server with one shard carry out their queue, timer and index effects themselves (1) or leaves all of them to the outbox (0)"),
    "DOLMEN_SHARDS": (0, 0, "how many shards the queue, timer and index keys get at the store's first use (0: 1 on one server, 2 per master on a cluster)"),
    MAX_VALUE_ENV: (DEFAULT_MAX_VALUE_BYTES, 1024, "the largest value (a call's params, a result) in bytes of JSON"),
    # The gateway's --wait-replicas and --wait-timeout-ms (README "On a Valkey or Redis Cluster").
    ENV_WAIT_REPLICAS: (0, 0, "how many replicas of its master must confirm a gateway's write (0: none)"),
    ENV_WAIT_TIMEOUT_MS: (1000, 1, "how long a gateway waits for those replicas, in ms"),
}


# The largest value a setting of `ENV_INTS` may take, where there is one.
ENV_MAXIMA: dict[str, int] = {"DOLMEN_SHARDS": 1024, ENV_WAIT_TIMEOUT_MS: 10_000, "DOLMEN_DIRECT_EFFECTS": 1, "DOLMEN_GROUP_COMMIT": 1}


def env_int(name: str, environ: Mapping[str, str] | None = None) -> int:
    """The integer setting `name` from the environment (or `environ`), or its default (see `ENV_INTS`).

    Raises `ConfigError` naming the variable, the value and what it should be.
    """
    default, minimum, what = ENV_INTS[name]
    text = (os.environ if environ is None else environ).get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    maximum = ENV_MAXIMA.get(name)
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise ConfigError(f"{name}={text!r} is not valid: it is {what}, a whole number {bounds} (default {default}); fix or unset it")
    return value


def check_env() -> None:
    """Fail early, with one clear message, on any malformed tuning variable (`platform up` runs this)."""
    for name in ENV_INTS:
        env_int(name)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    try:
        # "pid (comm) S ...": the state letter follows the last ')'.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): kill(0) is all we know
    fields = stat.rpartition(")")[2].split()
    return not fields or fields[0] not in ("Z", "X")


def resolve_data_dir(flag: str | Path | None) -> Path:
    """The data directory: `--data-dir`, else `$DOLMEN_HOME`, else `./.dolmen`."""
    if flag:
        return Path(flag).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return Path(DEFAULT_DATA_DIR).resolve()


@dataclass(frozen=True, slots=True)
class PlatformFile:
    """The contents of `platform.json`, written by `platform up`."""

    redis_url: str
    gateway_url: str | None
    supervisor_pid: int | None
    processes: dict[str, int]
    embedded_valkey: bool

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / "platform.json"

    @classmethod
    def read(cls, data_dir: Path) -> PlatformFile | None:
        path = cls.path(data_dir)
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); delete it and run `platform up` again") from None
        return cls(
            redis_url=raw["redis_url"],
            gateway_url=raw.get("gateway_url"),
            supervisor_pid=raw.get("supervisor_pid"),
            processes=dict(raw.get("processes", {})),
            embedded_valkey=bool(raw.get("embedded_valkey", False)),
        )

    @classmethod
    def read_live(cls, data_dir: Path) -> PlatformFile | None:
        """`read`, ignoring a file left behind by a supervisor that no longer runs."""
        found = cls.read(data_dir)
        return found if found is not None and found.is_live() else None

    def is_live(self) -> bool:
        """Whether the supervisor that wrote this file still runs (a file without a pid is trusted)."""
        return self.supervisor_pid is None or pid_alive(self.supervisor_pid)

    @classmethod
    def remove(cls, data_dir: Path, supervisor_pid: int) -> None:
        """Delete `platform.json` if it still belongs to `supervisor_pid` (a newer `up` may own it)."""
        try:
            found = cls.read(data_dir)
        except ConfigError:
            found = None
        if found is None or found.supervisor_pid in (supervisor_pid, None):
            cls.path(data_dir).unlink(missing_ok=True)

    def write(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = self.path(data_dir)
        tmp = path.with_suffix(".json.tmp")
        tmp.unlink(missing_ok=True)
        text = json.dumps(
            {
                "redis_url": self.redis_url,
                "gateway_url": self.gateway_url,
                "supervisor_pid": self.supervisor_pid,
                "processes": self.processes,
                "embedded_valkey": self.embedded_valkey,
            },
            indent=2,
        )
        # Readable by this user only: the Redis URL may hold a password.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(text + "\n")
        os.replace(tmp, path)


def resolve_redis_url(flag: str | None, data_dir: Path) -> str:
    """`--redis`, else `$DOLMEN_REDIS_URL`, else the running platform's; raises `NotFoundError` (`no_platform`)
    when none of them is there."""
    if flag:
        return flag
    env = os.environ.get(ENV_REDIS)
    if env:
        return env
    running = PlatformFile.read_live(data_dir)
    if running is not None:
        return running.redis_url
    raise no_platform(data_dir)


def no_platform(data_dir: Path) -> NotFoundError:
    """The error of a command that needs a running platform where `data_dir` has none (exit 3), naming the fix."""
    found = PlatformFile.read(data_dir)
    if found is not None:
        return NotFoundError(
            f"no platform is running for data directory {data_dir}: its platform.json was written by "
            f"`platform up` (pid {found.supervisor_pid}), which has exited; start it again with `platform up`, "
            f"or pass --redis redis://HOST:PORT (or set {ENV_REDIS})"
        )
    return NotFoundError(
        f"no platform is running for data directory {data_dir}: start one with `platform up` "
        f"(in this directory, or with --data-dir), or pass --redis redis://HOST:PORT "
        f"(or set {ENV_REDIS})"
    )


def resolve_gateway_url(flag: str | None, data_dir: Path) -> str | None:
    """`--gateway`, else `$DOLMEN_GATEWAY_URL`, else the running platform's gateway, else None."""
    if flag:
        return flag.rstrip("/")
    env = os.environ.get(ENV_GATEWAY)
    if env:
        return env.rstrip("/")
    running = PlatformFile.read_live(data_dir)
    return running.gateway_url if running else None
