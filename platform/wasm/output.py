"""Capture a guest's stdout and stderr within limits, and say in one line what its stderr reports.

The bytes come from an instance's pipes (see `pipes`); `CapturedOutput`
keeps those of one call, `StreamDecoder` turns them into text as they come.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field


DEFAULT_OUTPUT_LIMIT = 64 * 1024
# How much of the end of stderr a failure is explained from, whatever the limit:
# a guest that fails prints its traceback last.
STDERR_TAIL = 16 * 1024

# Lines that componentize-py's runtime adds after a Python exception; they say
# nothing about the guest's own failure.
_NOISE = (
    "note: run with `RUST_BACKTRACE",
    "Python function threw an unexpected exception",
)


@dataclass(slots=True)
class CapturedOutput:
    """The guest's stdout and stderr of one call, each bounded to `limit` bytes.

    Fed by an instance's `OutputSwitch` (see `instances`) through `write`.
    Every byte up to the limit is kept; a cut lands on a UTF-8 character
    boundary, and nothing after it is kept, so the text stays contiguous.
    `text()` marks a cut stream with how much was dropped. Whatever the
    limit, the last `STDERR_TAIL` bytes of stderr are kept in `stderr_tail`:
    a failing guest prints its traceback last.
    """

    limit: int = DEFAULT_OUTPUT_LIMIT
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    dropped: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    stderr_tail: bytearray = field(default_factory=bytearray)

    def write(self, stream: str, data: bytes) -> None:
        """Append `data` to `stream` ("stdout" or "stderr"), within the limit."""
        if stream == "stderr":
            _keep_tail(self.stderr_tail, data, STDERR_TAIL)
        if self.dropped[stream]:
            self.dropped[stream] += len(data)
            return
        buffer = self.stdout if stream == "stdout" else self.stderr
        room = max(self.limit - len(buffer), 0)
        if len(data) <= room:
            buffer.extend(data)
            return
        buffer.extend(data[:room])
        split = _split_character(buffer)
        if split:
            del buffer[-split:]
        self.dropped[stream] = len(data) - room + split
        self.truncated = True

    def text(self) -> dict[str, str]:
        """The non-empty streams, decoded; a truncated one ends with a line saying so."""
        out: dict[str, str] = {}
        for stream, buffer in (("stdout", self.stdout), ("stderr", self.stderr)):
            dropped = self.dropped[stream]
            if not buffer and not dropped:
                continue
            text = buffer.decode("utf-8", "replace")
            if dropped:
                text += truncation_marker(dropped, self.limit, newline=bool(text) and not text.endswith("\n"))
            out[stream] = text
        return out


def truncation_marker(dropped: int, limit: int, *, newline: bool) -> str:
    """The line ending a stream that was cut at `limit` bytes, `dropped` bytes later."""
    start = "\n" if newline else ""
    return f"{start}[output truncated: {dropped} more bytes not kept; the limit is {limit} bytes per stream]\n"


def _split_character(buffer: bytearray) -> int:
    """How many bytes at the end of `buffer` start a UTF-8 character whose other bytes are missing."""
    for back in range(1, min(4, len(buffer)) + 1):
        byte = buffer[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the first byte of the last character
            length = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
            return back if back < length else 0
    return 0  # continuation bytes only: not UTF-8, kept as written


def _keep_tail(tail: bytearray, data: bytes, size: int) -> None:
    """Append `data` to `tail`, keeping its last `size` bytes, starting on a character boundary."""
    tail.extend(data[-size:])
    if len(tail) > size:
        del tail[: len(tail) - size]
        start = 0
        while start < min(3, len(tail)) and tail[start] & 0xC0 == 0x80:
            start += 1
        del tail[:start]


class StreamDecoder:
    """Decodes output as it arrives, stream by stream.

    Output reaches the host in reads of a pipe, which may end inside a UTF-8
    character: its first bytes wait for the next read instead of each half
    becoming U+FFFD.
    """

    def __init__(self) -> None:
        self._decoders = {stream: codecs.getincrementaldecoder("utf-8")("replace") for stream in ("stdout", "stderr")}

    def decode(self, stream: str, data: bytes) -> str:
        """The text that `data` completes on `stream`."""
        return self._decoders[stream].decode(data)


def stderr_summary(stderr: bytes | bytearray, max_lines: int = 6) -> str | None:
    """What a failed guest's stderr says, in one line: its Python exception if it raised one."""
    lines = _lines(stderr)
    exception = python_exception(lines)
    if exception:
        return f"the guest raised {exception}"
    kept = [line.strip() for line in lines if line.strip() and not line.strip().startswith(_NOISE)]
    if not kept:
        return None
    return "guest stderr: " + " | ".join(kept[-max_lines:])


def python_exception(lines: list[str]) -> str | None:
    """The `Type: message` line ending the last Python traceback in `lines`, if any."""
    span = _last_traceback(lines)
    if span is None:
        return None
    start, end = span
    line = lines[end]
    if line.startswith("object address"):
        # CPython could not format the exception (e.g. out of memory)
        # and dumped the object instead: its repr is the best we have.
        reprs = [r.partition(":")[2].strip() for r in lines[start + 1 :] if r.startswith("object repr")]
        return reprs[0] if reprs else None
    return line.strip() if end > start and line and not line[0].isspace() else None


def python_traceback(stderr: bytes | bytearray, max_lines: int = 40) -> str | None:
    """The last Python traceback in `stderr`, its `Traceback` line to its exception line.

    A longer one keeps its first and last lines: the outermost calls and the
    innermost, where the exception was raised.
    """
    lines = _lines(stderr)
    span = _last_traceback(lines)
    if span is None:
        return None
    block = lines[span[0] : span[1] + 1]
    if len(block) > max_lines:
        head = max_lines // 2
        tail = max_lines - head - 1
        block = [*block[:head], f"  ... ({len(block) - head - tail} lines not shown)", *block[-tail:]]
    return "\n".join(block)


def _lines(stderr: bytes | bytearray) -> list[str]:
    return [line.rstrip() for line in bytes(stderr).decode("utf-8", "replace").splitlines()]


def _last_traceback(lines: list[str]) -> tuple[int, int] | None:
    """Where the last Python traceback in `lines` starts and ends (its first unindented line after the start)."""
    start = None
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last):"):
            start = i
    if start is None:
        return None
    for end in range(start + 1, len(lines)):
        if lines[end] and not lines[end][0].isspace():
            return start, end
    return start, len(lines) - 1
