"""Global options after the command too: `platform up --data-dir X`, `platform schedules list --json`.

The root group declares the global options (main.py) and resolves their
defaults and environment variables. `accept_after_commands` gives every
command and subgroup below it a copy of each, which only stores a value given
on the command line into the shared `CliContext`. Given both before and after
the command, the one after wins: it is read later, as a repeated click option
whose last value counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource

from ..log import configure_logging
from .shared import CliContext

# Root option name -> the CliContext field it sets.
_FIELDS = {
    "data_dir": "data_dir_flag",
    "redis_url": "redis_flag",
    "gateway_url": "gateway_flag",
    "json_output": "json_output",
    "debug": "debug",
    "log_format": "log_format",
}


def accept_after_commands(root: click.Group) -> None:
    """Add a copy of each of `root`'s global options to every command and group below it."""
    originals = {p.name: p for p in root.params if isinstance(p, click.Option) and p.name is not None and p.name in _FIELDS}
    for command in _descendants(root):
        taken = {opt for param in command.params for opt in param.opts}
        for name, original in originals.items():
            # A command with an option of the same name would keep its own (none has one).
            if not taken.intersection(original.opts):
                command.params.append(_copy(original, name))


def _descendants(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = []
    for command in group.commands.values():
        found.append(command)
        if isinstance(command, click.Group):
            found += _descendants(command)
    return found


def _copy(original: click.Option, name: str) -> click.Option:
    """The option as a command below the root takes it: no default and no environment variable, so that it
    overrides the root's value only when typed."""
    # `is_flag` only for flags: click (8.2 and later) reads an explicit `is_flag=False` as "the value is
    # optional", and `status --data-dir` with no value then ran on the default directory instead of failing.
    kind: dict[str, Any] = {"is_flag": True} if original.is_flag else {"type": original.type}
    return click.Option(
        [f"global_{name}", *original.opts],  # the name keeps it apart from the command's own parameters
        metavar=original.metavar,
        help=f"{original.help} [global option]",
        expose_value=False,
        callback=_store(_FIELDS[name]),
        **kind,
    )


def typed_value(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """The callback of a global option that takes a value (--data-dir, --redis, --gateway): a value typed on the
    command line must be one, not empty and not the next option.

    click takes `--data-dir --json` as the directory `--json`, and `--data-dir=` as no directory at all, which
    then falls back to the default: a command would run on a platform the user did not name. Raises
    `click.BadParameter` (exit 2) naming the option.
    """
    if ctx.resilient_parsing or param.name is None or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
        return value
    option = max(param.opts, key=len)
    if isinstance(value, str) and not value.strip():
        raise click.BadParameter(f"{option} needs a value, not an empty one", ctx=ctx, param=param)
    if isinstance(value, str) and value.startswith("-"):
        raise click.BadParameter(
            f"{value!r} looks like an option, not a value of {option} (for a name that starts with '-', "
            f"write ./{value})", ctx=ctx, param=param,
        )  # fmt: skip
    return value


def _store(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if ctx.resilient_parsing or param.name is None or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            return
        if not isinstance(param, click.Option) or not param.is_flag:
            value = typed_value(ctx, param, value)
        settings = ctx.ensure_object(CliContext)
        setattr(settings, field, value)
        if field in ("debug", "log_format"):
            # The root configured logging before this command's options were read.
            configure_logging(settings.log_format, "debug" if settings.debug else "info")  # type: ignore[arg-type]

    return store


__all__ = ["accept_after_commands", "typed_value"]
