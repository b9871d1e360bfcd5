"""Commands: `push` and `pull` of components to and from OCI registries."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ...registry.auth import Credentials
from ..wasm.cache import ComponentCache
from ...registry.pull import export_component, fetch_component
from ...registry.push import push_component
from ..errors import ComponentError, UsageError
from .shared import CliContext, echo, emit_json, pass_ctx

F = TypeVar("F", bound=Callable[..., Any])


def registry_options(func: F) -> F:
    """`--username`, `--password-stdin` and `--insecure`, shared by every registry command."""
    func = click.option(
        "--insecure",
        is_flag=True,
        help="Use plain HTTP for this registry (always used for 127.0.0.1, localhost and ::1).",
    )(func)
    func = click.option(
        "--password-stdin",
        is_flag=True,
        help="Read the registry password or token from standard input (needs --username).",
    )(func)
    func = click.option(
        "-u",
        "--username",
        metavar="NAME",
        help="Registry user name [default: credentials from ~/.docker/config.json, else anonymous].",
    )(func)
    return func


def credentials_from_flags(username: str | None, password_stdin: bool) -> Credentials | None:
    """Credentials given on the command line, or None to fall back to the Docker config.

    The password is standard input's text without its final line break. Raises `UsageError` for one flag
    without the other, or an empty password.
    """
    if username is None and not password_stdin:
        return None
    if username is None:
        raise UsageError("--password-stdin needs --username NAME")
    if not password_stdin:
        raise UsageError(
            "--username needs --password-stdin; pass the password on standard input, "
            "e.g. `echo \"$TOKEN\" | platform push ... --username NAME --password-stdin`"
        )
    password = sys.stdin.read()
    password = password.removesuffix("\n").removesuffix("\r")
    if not password:
        raise UsageError("--password-stdin read an empty password from standard input")
    return Credentials(username, password, source="--username/--password-stdin")


@click.command("push")
@click.argument("file", metavar="FILE.wasm", type=click.Path(exists=True, dir_okay=False))
@click.argument("reference", metavar="oci://HOST/REPO:TAG")
@registry_options
@pass_ctx
def push_cmd(
    ctx: CliContext, file: str, reference: str, username: str | None, password_stdin: bool, insecure: bool
) -> None:
    """Publish a component as a Wasm OCI artifact and print its digest-pinned reference."""
    credentials = credentials_from_flags(username, password_stdin)
    path = Path(file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ComponentError(f"cannot read component file '{path}': {exc.strerror or exc}") from None
    pushed = push_component(
        data,
        reference,
        ComponentCache(ctx.data_dir),
        credentials=credentials,
        insecure=insecure,
        title=path.name,
    )
    if ctx.json_output:
        emit_json(
            {
                "reference": str(pushed.reference),
                "tag": str(pushed.tagged),
                "digest": pushed.manifest_digest,
                "component_digest": pushed.component_digest,
                "size": pushed.size,
            }
        )
        return
    echo(str(pushed.reference))


@click.command("pull")
@click.argument("reference", metavar="oci://HOST/REPO[:TAG|@sha256:...]")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write the component to this file.")
@registry_options
@pass_ctx
def pull_cmd(
    ctx: CliContext,
    reference: str,
    output: str | None,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Download a component, verify it against its digests and store it in the component cache.

    Exit status: 0 when stored, 3 when the registry has no such repository, tag or digest, 1 when it refuses
    the credentials, cannot be reached, or sends bytes that do not match their digest.
    """
    credentials = credentials_from_flags(username, password_stdin)
    cache = ComponentCache(ctx.data_dir)
    fetched = fetch_component(reference, cache, credentials=credentials, insecure=insecure)
    written = export_component(cache, fetched, Path(output)) if output else None
    if ctx.json_output:
        emit_json(
            {
                "reference": str(fetched.reference),
                "digest": fetched.manifest_digest,
                "component_digest": fetched.component_digest,
                "size": fetched.size,
                "cached": fetched.cached,
                "output": str(written) if written else None,
            }
        )
        return
    echo(str(fetched.reference))
    where = f" -> {written}" if written else ""
    source = "already cached" if fetched.cached else "downloaded and verified"
    echo(f"component {fetched.component_digest} ({fetched.size} bytes, {source}){where}")


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(push_cmd)
    cli.add_command(pull_cmd)
