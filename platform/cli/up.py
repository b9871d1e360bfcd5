"""Commands: `up` and `status` (the local supervisor)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
