"""structlog configuration, done once by each entry point."""

from __future__ import annotations

import contextvars
import logging
import sys
from types import TracebackType
from typing import Any, Literal, TextIO, cast

import structlog

LogFormat = Literal["auto", "console", "json"]


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured.

    Loggers are cached at first use; one bound to a stream that was later
    replaced and closed (a test's captured stderr, an embedding host's) would
    fail every later log call with "I/O operation on closed file".
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(fmt: LogFormat = "auto", level: str = "info") -> None:
    """Configure structlog for this process: console on a TTY, JSON lines otherwise.

    Context such as `execution_id` and `ffqn` is bound through contextvars
    (`bound`) by the code doing the work.
    """
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )


class bound:  # noqa: N801 - used as `with bound(...)`, as structlog's `bound_contextvars`
    """`with bound(execution_id=..., ffqn=...)`: log context for the block, as `structlog.contextvars.bound_contextvars`.

    That one reads the whole context (`get_contextvars`) to save the keys it
    replaces, which cost a runner about 3% of its CPU at one binding per
    attempt; this one keeps the `contextvars.Token`s that binding returns and
    resets them on exit (`structlog.contextvars.reset_contextvars`), which
    restores the same values. Enter it once, in the thread that leaves it.
    """

    __slots__ = ("_values", "_tokens")

    def __init__(self, **values: Any) -> None:
        self._values = values
        self._tokens: dict[str, contextvars.Token[Any]] = {}

    def __enter__(self) -> None:
        self._tokens = dict(structlog.contextvars.bind_contextvars(**self._values))

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)
