"""How much memory the embedded Valkey may use: its `maxmemory`.

Everything Dolmen stores lives in Valkey's memory, so `platform up` gives the
embedded server a limit, with the `noeviction` policy: once full, it refuses
writes (a clear error, see `StoreFullError`) instead of deleting executions
or growing until the kernel's OOM killer ends it. The default is a quarter of
this machine's memory (of the container's limit, when lower): room for
Valkey's copy-on-write rewrite of its append-only file and for the rest of
the platform. `platform up --maxmemory SIZE` or `DOLMEN_VALKEY_MAXMEMORY`
change it, as a size (`512MiB`, `4GiB`, `2GB`) or a share of the machine's
memory (`50%`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

ENV_MAXMEMORY = "DOLMEN_VALKEY_MAXMEMORY"
DEFAULT_SHARE = 25  # percent of the machine's memory
# A componentize-py component alone takes about 18 MB of Valkey's memory.
MIN_MAXMEMORY = 64 * 1024**2
_FALLBACK_MACHINE = 4 * 1024**3  # when the machine's memory cannot be read

_UNITS = {
    "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+)\s*([A-Za-z]*)\s*$")
_SHARE = re.compile(r"^\s*(\d+)\s*%\s*$")
# cgroup v2, then v1: a container's memory limit ("max", or a huge v1 number, when none).
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def machine_memory() -> int:
    """This machine's physical memory in bytes, or its container's memory limit when lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = _FALLBACK_MACHINE
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def share_of(percent: int, total: int) -> int:
    """`percent` of `total` bytes, rounded down to whole MiB, at least `MIN_MAXMEMORY`."""
    return max(MIN_MAXMEMORY, total * percent // 100 // 1024**2 * 1024**2)


def default_maxmemory(total: int | None = None) -> int:
    """A quarter of this machine's memory (`total` bytes when given), at least `MIN_MAXMEMORY`."""
    return share_of(DEFAULT_SHARE, machine_memory() if total is None else total)


def parse_maxmemory(text: str, total: int | None = None) -> int:
    """Bytes of `512MiB`, `4GiB`, `2GB`, a number of bytes, or `N%` of the machine's memory (`total`).

    Raises ValueError saying what to write instead.
    """
    total = machine_memory() if total is None else total
    share = _SHARE.match(text)
    if share is not None:
        percent = int(share.group(1))
        if not 1 <= percent <= 100:
            raise ValueError(f"'{text}' is not a share of this machine's memory: give 1% to 100%")
        return share_of(percent, total)
    size = _SIZE.match(text)
    if size is None or size.group(2) not in ("", *_UNITS):
        raise ValueError(
            f"'{text}' is not a size: write e.g. 512MiB, 4GiB, 2GB, or 50% of this machine's memory "
            f"({total // 1024**2} MiB)"
        )
    value = int(size.group(1)) * _UNITS[size.group(2) or "B"]
    if value < MIN_MAXMEMORY:
        raise ValueError(
            f"'{text}' is too little for Valkey to hold a deployment (a Python component alone takes about "
            "18 MB): give at least 64MiB"
        )
    return value


def resolve_maxmemory(flag: str | None, environ: Mapping[str, str] | None = None, total: int | None = None) -> int:
    """The embedded Valkey's maxmemory: `--maxmemory`, else `DOLMEN_VALKEY_MAXMEMORY`, else the default.

    Raises `ConfigError` naming where the bad value came from and what to write.
    """
    env = (os.environ if environ is None else environ).get(ENV_MAXMEMORY, "").strip()
    source, text = ("--maxmemory", flag) if flag is not None else (ENV_MAXMEMORY, env)
    if not text:
        return default_maxmemory(total)
    try:
        return parse_maxmemory(text, total)
    except ValueError as exc:
        raise ConfigError(
            f"{source}: {exc} (the embedded Valkey's memory limit; default {DEFAULT_SHARE}% of this machine's memory)"
        ) from None


__all__ = [
    "DEFAULT_SHARE",
    "ENV_MAXMEMORY",
    "MIN_MAXMEMORY",
    "default_maxmemory",
    "machine_memory",
    "parse_maxmemory",
    "resolve_maxmemory",
]
