"""`python -m dolmen.platform.cli` runs the `platform` program."""

from .main import main

main()
