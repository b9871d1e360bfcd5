"""Running the `platform` CLI as a user does: a separate process, its output as text."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def run_platform(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`platform ARGS...` in a new process, with `env` added to this one's environment; never raises on exit codes."""
    return subprocess.run(
        [sys.executable, "-m", "dolmen.platform.cli.main", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
