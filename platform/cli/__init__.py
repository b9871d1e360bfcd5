"""The `platform` command-line program (entry point: `dolmen.platform.cli.main:main`)."""
