"""Entry point of the `platform` program: global options and error reporting.

Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 not found,
130 interrupted. A `DolmenError` exits with its class's `exit_code`
(platform/errors.py); click's own usage errors with 2.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import click

from .._version import __version__
from ..errors import DolmenError
from ..log import configure_logging
from .global_options import accept_after_commands, typed_value
from .shared import CliContext

# Each module adds its commands to the root group; one module per concern.
_COMMAND_MODULES = (
    "services",
    "up",
    "down",
    "status",
    "wasm",
    "executions",
    "purge",
    "registry",
    "deploy",
    "gc",
    "schedules",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="platform", message="%(prog)s (dolmen) %(version)s")
@click.option(
    "--data-dir",
    envvar="DOLMEN_HOME",
    metavar="DIR",
    callback=typed_value,
    help="Data directory of the platform [default: ./.dolmen, or $DOLMEN_HOME].",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    callback=typed_value,
    help="Redis/Valkey URL [default: $DOLMEN_REDIS_URL, else the one `platform up` started].",
)
@click.option(
    "--gateway", "gateway_url", metavar="URL", callback=typed_value,
    help="Gateway URL [default: $DOLMEN_GATEWAY_URL, else the one `platform up` started].",
)  # fmt: skip
@click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    default="auto",
    show_default=True,
    help="Log lines as console text or JSON (auto: console on a terminal).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: str | None,
    redis_url: str | None,
    gateway_url: str | None,
    json_output: bool,
    debug: bool,
    log_format: str,
) -> None:
    """Dolmen: durable, deterministic functions for WebAssembly components.

    The options below, but --version, also work after any command (`platform up --data-dir X`); given both
    before and after it, the one after wins.

    Exit status: 0 success; 1 a failure (an error, or what a command says, e.g. a failed execution); 2 bad usage or
    configuration (an option, a deployment file, a store that refuses the URL's credentials); 3 something named does
    not exist (an execution, a function, a revision, a component); 130 interrupted. Errors print one line on
    standard error (with --debug, their traceback too).
    """
    configure_logging(log_format, "debug" if debug else "info")  # type: ignore[arg-type]
    obj = ctx.ensure_object(CliContext)
    obj.data_dir_flag = data_dir
    obj.redis_flag = redis_url
    obj.gateway_flag = gateway_url
    obj.json_output = json_output
    obj.debug = debug
    obj.log_format = log_format
    ctx.call_on_close(obj.close)


for _name in _COMMAND_MODULES:
    importlib.import_module(f"{__package__}.{_name}").register(cli)
accept_after_commands(cli)


def usage_line(exc: click.UsageError) -> str:
    """click's usage error as one line, as Dolmen's own errors are: its message, then where the options are listed.

    click prints a usage error as three lines (`Usage: ...`, `Try ... --help`, `Error: ...`).
    """
    path = exc.ctx.command_path if exc.ctx is not None else "platform"
    return f"{exc.format_message().strip().rstrip('.')} (`{path} --help` lists what it takes)"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI, printing Dolmen errors on one line (with a traceback under --debug); never returns.

    Exits with the command's status, a `DolmenError`'s `exit_code`, click's (2 for usage), or 130 when interrupted.
    """
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        rc = cli.main(args=argv, prog_name="platform", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(f"error: {usage_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DolmenError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
