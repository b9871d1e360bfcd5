"""click's usage errors come as Dolmen's do: one `error:` line naming what is wrong and where the options are, exit 2."""

from __future__ import annotations

import pytest

from tests.support.cli import run_platform

CASES = [
    (("cal",), "error: No such command 'cal'. Did you mean 'call'? (`platform --help` lists what it takes)"),
    (("--bogus", "status"), "error: No such option '--bogus' (`platform --help` lists what it takes)"),
    (("call",), "error: Missing argument 'FFQN' (`platform call --help` lists what it takes)"),
    (
        ("executions", "list", "--status", "done"),
        "error: Invalid value for '--status': 'done' is not one of 'pending', 'running', 'blocked', 'finished' "
        "(`platform executions list --help` lists what it takes)",
    ),
    (
        ("call", "a:b/c@1.0.0.d", "--timeout", "abc"),
        "error: Invalid value for '--timeout': 'abc' is not a valid number of seconds (`platform call --help` lists what it takes)",
    ),
    (
        ("call", "a:b/c@1.0.0.d", "--timeout", "nan"),
        "error: Invalid value for '--timeout': 'nan' is not a finite number of seconds; give e.g. 30 or 2.5 "
        "(`platform call --help` lists what it takes)",
    ),
    (("down", "--timeout", "inf"), "'inf' is not a finite number of seconds"),
    (("up", "--stop-timeout", "-1"), "-1.0 is not in the range x>=0"),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(args) for args, _ in CASES])
def test_a_usage_error_is_one_line_with_exit_2(args: tuple[str, ...], expected: str, tmp_path: object) -> None:
    done = run_platform("--data-dir", str(tmp_path), *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Usage:" not in done.stderr and "Traceback" not in done.stderr


def test_help_names_the_unit_of_a_seconds_option() -> None:
    done = run_platform("call", "--help")
    assert done.returncode == 0
    assert "--timeout SECONDS" in done.stdout
