"""The `platform` command-line program."""

from .main import cli, main

__all__ = ["cli", "main"]
