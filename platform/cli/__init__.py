"""The `platform` command-line program (entry point: `dolmen.platform.cli.main:main`).

The names below are the package's API: `cli`, the root command group (run it, or test
it with click's `CliRunner`), and `CliContext`, the global options every command
reads. They are imported on first use (PEP 562): importing the package loads no
command module, so `python -m dolmen.platform.cli.main` runs without runpy's warning
about a module imported twice. The entry point `main` is not re-exported: `main` is
the name of its module, which Python binds on the package whenever it is imported,
so `dolmen.platform.cli.main` would be the function or the module depending on the
order of imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .main import cli
    from .shared import CliContext

# Each exported name -> the module that defines it.
_EXPORTS = {
    "CliContext": "shared",
    "cli": "main",
}

__all__ = [
    "CliContext",
    "cli",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
