"""Global options are accepted after the command as well as before it; after it, they win."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from dolmen.platform.cli.main import cli
from tests.support.cli import run_platform

GLOBAL = ("--data-dir", "--redis", "--gateway", "--json", "--debug", "--log-format")
REFUSED_PORT = "redis://127.0.0.1:1"  # nothing listens there: connecting fails at once


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subgroup below `group`, as the words that invoke it."""
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += command_paths(command, (*path, name))
    return found


def test_every_command_and_subgroup_takes_every_global_option() -> None:
    """Each command below the root, nested ones included, declares each global option once."""
    paths = command_paths(cli)
    assert ("schedules", "list") in paths and ("executions", "purge") in paths
    for path in paths:
        command: click.Command = cli
        for word in path:
            assert isinstance(command, click.Group)
            command = command.commands[word]
        opts = [opt for param in command.params for opt in param.opts]
        for option in GLOBAL:
            assert opts.count(option) == 1, f"`platform {' '.join(path)}` takes {option} {opts.count(option)} times"


def test_the_help_of_a_command_lists_the_global_options() -> None:
    """`platform up --help` shows --data-dir, marked as a global option."""
    shown = run_platform("up", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--data-dir DIR" in shown.stdout and "[global option]" in shown.stdout


def test_up_takes_data_dir_after_the_command(tmp_path: Path) -> None:
    """`platform up --data-dir X` is no longer "No such option": it runs (here it stops at a bad setting, as before)."""
    proc = run_platform("up", "--data-dir", str(tmp_path / "d"), env={"DOLMEN_SPARE_INSTANCES": "two"})
    assert proc.returncode == 2, proc.stderr
    assert "No such option" not in proc.stderr and "DOLMEN_SPARE_INSTANCES='two' is not valid" in proc.stderr
    assert not (tmp_path / "d" / "platform.json").exists()


def test_the_data_dir_after_the_command_wins(tmp_path: Path) -> None:
    """Given before and after `status`, the data directory named after it is the one looked at."""
    before, after = tmp_path / "before", tmp_path / "after"
    proc = run_platform("--data-dir", str(before), "status", "--data-dir", str(after), env={"DOLMEN_REDIS_URL": ""})
    assert proc.returncode == 3, proc.stderr
    assert f"no platform is running for data directory {after}" in proc.stderr and str(before) not in proc.stderr


def test_the_environment_does_not_override_a_data_dir_given_before_the_command(tmp_path: Path) -> None:
    """$DOLMEN_HOME stays a default: the copy after the command only counts when typed."""
    given = tmp_path / "given"
    proc = run_platform("--data-dir", str(given), "status", env={"DOLMEN_HOME": str(tmp_path / "env"), "DOLMEN_REDIS_URL": ""})
    assert proc.returncode == 3 and f"data directory {given}" in proc.stderr, proc.stderr


def test_a_nested_command_takes_redis_after_it_and_that_one_wins(redis_url: str) -> None:
    """`platform schedules list --redis URL` uses that URL, even when another comes before the command."""
    proc = run_platform("--redis", redis_url, "schedules", "list", "--json", "--redis", REFUSED_PORT)
    assert proc.returncode != 0 and "127.0.0.1:1" in proc.stderr, proc.stderr
    assert "No such option" not in proc.stderr


def test_json_after_a_nested_command_prints_the_same_json_as_before_it(redis_url: str, tmp_path: Path) -> None:
    """`platform executions list --json` and `platform --json executions list` print the same JSON."""
    before = run_platform("--json", "--redis", redis_url, "--data-dir", str(tmp_path), "executions", "list")
    after = run_platform("executions", "list", "--json", "--redis", redis_url, "--data-dir", str(tmp_path))
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)


def test_a_group_takes_the_global_options_before_its_own_command(redis_url: str, tmp_path: Path) -> None:
    """`platform executions --json list` works too: a subgroup is a command like any other."""
    proc = run_platform("executions", "--json", "--redis", redis_url, "--data-dir", str(tmp_path), "list")
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_wherever_it_is_given(tmp_path: Path, where: str) -> None:
    """--debug after the command, like before it, adds the traceback to the one-line error."""
    args = ["status", "--data-dir", str(tmp_path)]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    proc = run_platform(*args, env={"DOLMEN_REDIS_URL": ""})
    assert proc.returncode == 3 and "Traceback" in proc.stderr and "error: no platform is running" in proc.stderr


@pytest.mark.parametrize("option", ["--data-dir", "--redis", "--gateway", "--log-format"])
def test_a_global_option_after_the_command_needs_its_value_as_before_it(option: str) -> None:
    """`platform status --data-dir` (no value) fails as `platform --data-dir status` does; it does not run on a default."""
    proc = run_platform("status", option, env={"DOLMEN_REDIS_URL": ""})
    assert proc.returncode == 2, proc.stderr
    assert f"Option '{option}' requires an argument" in proc.stderr and "no platform is running" not in proc.stderr


@pytest.mark.parametrize("command", [("status",), ("executions", "list"), ("functions",), ("call", "a:b/c@1.0.0.d")])
def test_every_command_needing_a_platform_exits_3_with_one_message_when_none_runs(command: tuple[str, ...], tmp_path: Path) -> None:
    """README: exit 3 "not found" for no platform running, whichever command found it out, with the same fix named."""
    proc = run_platform("--data-dir", str(tmp_path / "none"), *command, env={"DOLMEN_REDIS_URL": ""})
    assert proc.returncode == 3, proc.stderr
    assert f"no platform is running for data directory {tmp_path / 'none'}: start one with `platform up`" in proc.stderr
    assert "pass --redis redis://HOST:PORT" in proc.stderr


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("status", "--data-dir="), "--data-dir needs a value, not an empty one"),
        (("--data-dir", "", "status"), "--data-dir needs a value, not an empty one"),
        (("status", "--redis="), "--redis needs a value, not an empty one"),
        (("status", "--gateway", " "), "--gateway needs a value, not an empty one"),
        (("status", "--data-dir", "--json"), "'--json' looks like an option, not a value of --data-dir"),
        (("--data-dir", "--json", "status"), "'--json' looks like an option, not a value of --data-dir"),
    ],
)
def test_an_empty_or_option_like_value_of_a_global_option_is_refused(args: tuple[str, ...], problem: str) -> None:
    """`--data-dir=` fell back to ./.dolmen and `--data-dir --json` made a directory `--json`: both exit 2 now."""
    proc = run_platform(*args, env={"DOLMEN_REDIS_URL": ""})
    assert proc.returncode == 2, proc.stderr
    assert problem in proc.stderr and "no platform is running" not in proc.stderr


@pytest.mark.parametrize(
    "args",
    [("call", "a:b/c@1.0.0.d", "[1]", "--timeout", "-1"), ("executions", "result", "E_x", "--wait", "-5"),
     ("up", "--stop-timeout", "-1"), ("gateway", "--max-wait", "-2")],
)  # fmt: skip
def test_a_negative_duration_is_refused_before_anything_runs(args: tuple[str, ...], tmp_path: Path) -> None:
    """`call --timeout -1` used to submit, then say it did not finish within -1 s: every duration must be >= 0."""
    proc = run_platform("--data-dir", str(tmp_path), *args, env={"DOLMEN_REDIS_URL": ""})
    assert proc.returncode == 2 and "is not in the range x>=0" in proc.stderr, proc.stderr
