"""Capture a guest's stdout and stderr, and say in one line what its stderr reports.

wasmtime calls a WASI output callback from its own runtime threads, and it
releases the callback from one of those threads some time after the store is
closed. A callback released while the interpreter shuts down makes that thread
exit in the middle of Rust code, which aborts the whole process (exit 134):
after closing a store, wait for its callbacks with `ReleaseTracker.wait`
before going on.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


DEFAULT_OUTPUT_LIMIT = 64 * 1024

# Lines that componentize-py's runtime adds after a Python exception; they say
# nothing about the guest's own failure.
_NOISE = (
    "note: run with `RUST_BACKTRACE",
    "Python function threw an unexpected exception",
)


class ReleaseTracker:
    """Tells when wasmtime has let go of the WASI output callbacks given to a store.

    Wrap each callback with `track` before handing it to `WasiConfig`; after
    `store.close()`, `wait` returns once wasmtime has dropped all of them.
    """

    def __init__(self) -> None:
        self._released = threading.Semaphore(0)
        self._pending = 0

    def track(self, callback: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        """`callback`, wrapped so that its release by wasmtime is counted."""
        tracked = _Tracked(callback)
        weakref.finalize(tracked, self._released.release).atexit = False
        self._pending += 1
        return tracked

    def wait(self, timeout: float = 2.0) -> bool:
        """Wait until every tracked callback is released; False if `timeout` seconds were not enough."""
        deadline = time.monotonic() + timeout
        while self._pending:
            if not self._released.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
            self._pending -= 1
        return True


class _Tracked:
    """A callback whose lifetime `ReleaseTracker` watches (functions and bound methods may be shared)."""

    __slots__ = ("_callback", "__weakref__")

    def __init__(self, callback: Callable[[bytes], Any]) -> None:
        self._callback = callback

    def __call__(self, data: bytes) -> Any:
        return self._callback(data)


@dataclass(slots=True)
class CapturedOutput:
    """The guest's stdout and stderr of one call, each bounded to `limit` bytes.

    Fed by an instance's `OutputSwitch` (see `instances`) through `write`.
    """

    limit: int = DEFAULT_OUTPUT_LIMIT
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def write(self, stream: str, data: bytes) -> None:
        """Append `data` to `stream` ("stdout" or "stderr"), within the limit."""
        buffer = self.stdout if stream == "stdout" else self.stderr
        room = self.limit - len(buffer)
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        buffer.extend(data)

    def text(self) -> dict[str, str]:
        """The non-empty streams, decoded."""
        out: dict[str, str] = {}
        if self.stdout:
            out["stdout"] = self.stdout.decode("utf-8", "replace")
        if self.stderr:
            out["stderr"] = self.stderr.decode("utf-8", "replace")
        return out


def stderr_summary(stderr: bytes | bytearray, max_lines: int = 6) -> str | None:
    """What a failed guest's stderr says, in one line: its Python exception if it raised one."""
    lines = [line.rstrip() for line in bytes(stderr).decode("utf-8", "replace").splitlines()]
    exception = python_exception(lines)
    if exception:
        return f"the guest raised {exception}"
    kept = [line.strip() for line in lines if line.strip() and not line.strip().startswith(_NOISE)]
    if not kept:
        return None
    return "guest stderr: " + " | ".join(kept[-max_lines:])


def python_exception(lines: list[str]) -> str | None:
    """The `Type: message` line ending the last Python traceback in `lines`, if any."""
    start = None
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            start = i
    if start is None:
        return None
    rest = lines[start + 1 :]
    for line in rest:
        if line and not line[0].isspace():
            if line.startswith("object address"):
                # CPython could not format the exception (e.g. out of memory)
                # and dumped the object instead: its repr is the best we have.
                reprs = [r.partition(":")[2].strip() for r in rest if r.startswith("object repr")]
                return reprs[0] if reprs else None
            return line.strip()
    return None
