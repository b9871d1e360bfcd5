"""What every command shares: resolved settings and output helpers."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..config import resolve_data_dir, resolve_gateway_url, resolve_redis_url


class Seconds(click.FloatRange):
    """An option's number of seconds: a finite number of at least 0 (`--timeout 2.5`).

    click's own `FloatRange(min=0)` calls `abc` "not a valid float range" and takes `nan` and `inf`.
    """

    name = "number of seconds"

    def __init__(self) -> None:
        super().__init__(min=0)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return "SECONDS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds; give e.g. 30 or 2.5", param, ctx)
        return seconds


@dataclass
class CliContext:
    """Global options, resolved lazily so commands that need no Redis never touch it."""

    data_dir_flag: str | None = None
    redis_flag: str | None = None
    gateway_flag: str | None = None
    json_output: bool = False
    debug: bool = False
    log_format: str = "auto"
    _closers: list[Any] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        """--data-dir, else $DOLMEN_HOME, else ./.dolmen (`config.resolve_data_dir`)."""
        return resolve_data_dir(self.data_dir_flag)

    def redis_url(self) -> str:
        """--redis, else $DOLMEN_REDIS_URL, else the one `platform up` recorded; else `ConfigError` naming the fix."""
        return resolve_redis_url(self.redis_flag, self.data_dir)

    def gateway_url(self) -> str | None:
        """--gateway, else $DOLMEN_GATEWAY_URL, else the one `platform up` recorded, without a trailing '/'; or None."""
        return resolve_gateway_url(self.gateway_flag, self.data_dir)

    def on_close(self, closer: Any) -> None:
        """Call `closer()` (no arguments) when the command ends, the last registered first."""
        self._closers.append(closer)

    def close(self) -> None:
        """Run the closers; an exception of one is swallowed so it cannot mask the command's outcome."""
        while self._closers:
            try:
                self._closers.pop()()
            except Exception:  # noqa: BLE001 - closing must not mask the command's outcome
                pass


pass_ctx = click.make_pass_decorator(CliContext, ensure=True)

# Piped output is read by programs and by people who widen their windows: a
# table folded to 80 columns would split execution ids over lines.
_console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 4096)


def emit_json(data: Any) -> None:
    """Print machine-readable output."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def emit_table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Print a human table."""
    table = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    _console.print(table)


def echo(text: str = "") -> None:
    """Print a line of human output (no markup interpretation)."""
    _console.print(text, markup=False)
