"""The embedded Valkey's maxmemory: its default, `--maxmemory` / DOLMEN_VALKEY_MAXMEMORY, and the errors naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.embedded import EmbeddedValkey, plan_embedded
from dolmen.platform.errors import ConfigError
from dolmen.platform.maxmemory import (
    ENV_MAXMEMORY,
    MIN_MAXMEMORY,
    default_maxmemory,
    machine_memory,
    parse_maxmemory,
    resolve_maxmemory,
)
from dolmen.platform.store.memory import StoreMemory, format_bytes, parse_info
from tests.support.cli import run_platform

MIB = 1024**2
GIB = 1024**3


def test_the_default_is_a_quarter_of_the_machine_in_whole_mib() -> None:
    """A quarter of the machine's memory, rounded down to MiB, and never below the minimum."""
    assert default_maxmemory(16 * GIB) == 4 * GIB
    assert default_maxmemory(1000 * MIB + 123) == 250 * MIB
    assert default_maxmemory(32 * MIB) == MIN_MAXMEMORY
    assert 0 < default_maxmemory() <= machine_memory() // 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512MiB", 512 * MIB), ("4GiB", 4 * GIB), ("2GB", 2 * 10**9), ("67108864", 64 * MIB), (" 50 % ", 8 * GIB), ("100%", 16 * GIB)],
)
def test_sizes_and_shares_are_read_as_deployments_write_sizes(text: str, expected: int) -> None:
    """Binary and decimal units as in a deployment's `memory`, bytes, or a share of the machine's memory."""
    assert parse_maxmemory(text, total=16 * GIB) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("512mb", "is not a size: write e.g. 512MiB, 4GiB, 2GB, or 50%"),
        ("lots", "is not a size"),
        ("0%", "give 1% to 100%"),
        ("150%", "give 1% to 100%"),
        ("1MiB", "give at least 64MiB"),
        ("32MiB", "a Python component alone takes about 18 MB"),
    ],
)
def test_a_bad_value_is_refused_naming_where_it_came_from_and_the_fix(text: str, problem: str) -> None:
    """The flag or the variable is named, with what to write instead."""
    with pytest.raises(ConfigError, match=f"^--maxmemory: '{text}' ") as from_flag:
        resolve_maxmemory(text, environ={}, total=16 * GIB)
    assert problem in from_flag.value.message and from_flag.value.exit_code == 2
    with pytest.raises(ConfigError, match=f"^{ENV_MAXMEMORY}: '{text}' "):
        resolve_maxmemory(None, environ={ENV_MAXMEMORY: text}, total=16 * GIB)


def test_the_flag_wins_over_the_variable_which_wins_over_the_default() -> None:
    """Resolution order: --maxmemory, then DOLMEN_VALKEY_MAXMEMORY, then a quarter of the machine."""
    env = {ENV_MAXMEMORY: "1GiB"}
    assert resolve_maxmemory("2GiB", environ=env, total=16 * GIB) == 2 * GIB
    assert resolve_maxmemory(None, environ=env, total=16 * GIB) == GIB
    assert resolve_maxmemory(None, environ={ENV_MAXMEMORY: " "}, total=16 * GIB) == 4 * GIB


def test_the_embedded_config_sets_maxmemory_and_noeviction(tmp_path: Path) -> None:
    """valkey.conf carries the limit and the policy that refuses writes instead of deleting keys."""
    server = plan_embedded(tmp_path, maxmemory=256 * MIB)
    server.write_config()
    lines = server.config_path.read_text().splitlines()
    assert f"maxmemory {256 * MIB}" in lines and "maxmemory-policy noeviction" in lines
    assert f"maxmemory {default_maxmemory()}" in EmbeddedValkey(tmp_path / "other", 6390).render_config().splitlines()
    assert plan_embedded(tmp_path).maxmemory == default_maxmemory()


def test_up_refuses_a_bad_maxmemory_before_starting_anything(tmp_path: Path) -> None:
    """`platform up` exits 2 on a malformed limit, or on --maxmemory with a server of one's own."""
    bad = run_platform("--data-dir", str(tmp_path), "up", "--maxmemory", "lots", env={ENV_MAXMEMORY: ""})
    assert bad.returncode == 2, bad.stderr
    assert "--maxmemory: 'lots' is not a size" in bad.stderr
    env_bad = run_platform("--data-dir", str(tmp_path), "up", env={ENV_MAXMEMORY: "5%%"})
    assert env_bad.returncode == 2 and f"{ENV_MAXMEMORY}: '5%%'" in env_bad.stderr
    own = run_platform("--data-dir", str(tmp_path), "--redis", "redis://127.0.0.1:1", "up", "--maxmemory", "1GiB")
    assert own.returncode == 2 and "CONFIG SET maxmemory" in own.stderr
    assert not (tmp_path / "valkey").exists() and not (tmp_path / "platform.json").exists()


def test_store_memory_figures_and_problems() -> None:
    """INFO memory read as used, limit, percentage and policy; full and evicting stores are problems."""
    roomy = parse_info({"used_memory": 3 * MIB, "maxmemory": 12 * MIB, "maxmemory_policy": "noeviction"})
    assert roomy.percent == 25.0 and not roomy.full and roomy.problems() == []
    assert roomy.describe() == "3.0 MiB used of maxmemory 12.0 MiB (25.0%), policy noeviction"
    assert roomy.to_json() == {
        "used_memory": 3 * MIB, "maxmemory": 12 * MIB, "used_percent": 25.0, "maxmemory_policy": "noeviction",
        "full": False,
    }  # fmt: skip
    full = StoreMemory(12 * MIB + 1, 12 * MIB, "noeviction")
    (problem,) = full.problems()
    assert problem.startswith("Redis is full") and "`platform executions purge`" in problem and "--maxmemory" in problem
    evicting = StoreMemory(MIB, 12 * MIB, "allkeys-lru")
    assert evicting.evicts and "deletes keys, and with them executions" in evicting.problems()[0]
    # A write larger than the room left is refused while the figure read between writes stays under the limit.
    nearly = StoreMemory(99 * MIB, 100 * MIB, "noeviction", headroom_bytes=4 * MIB)
    assert nearly.full and "less room than a write of 4.0 MiB takes" in nearly.problems()[0]
    assert not StoreMemory(95 * MIB, 100 * MIB, "noeviction", headroom_bytes=4 * MIB).full
    # The headroom counts at most 5% of maxmemory.
    assert not StoreMemory(94 * MIB, 100 * MIB, "noeviction", headroom_bytes=20 * MIB).full
    unlimited = StoreMemory(MIB, 0, "noeviction", headroom_bytes=4 * MIB)
    assert unlimited.percent is None and not unlimited.full and not unlimited.evicts
    assert unlimited.describe() == "1.0 MiB used, no maxmemory (policy noeviction)"
    assert format_bytes(512) == "512 B" and format_bytes(3 * GIB // 2) == "1.5 GiB"
