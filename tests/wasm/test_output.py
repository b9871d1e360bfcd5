"""Captured guest output and the one-line summary of a failed guest's stderr."""

from __future__ import annotations

from dolmen.platform.wasm.output import (
    STDERR_TAIL,
    CapturedOutput,
    StreamDecoder,
    python_traceback,
    stderr_summary,
)

PANIC_TAIL = (
    "\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1280:25:\n"
    "Python function threw an unexpected exception\n"
    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
)


def test_python_exception_is_named() -> None:
    """A Python traceback is summarized by its exception line."""
    stderr = 'Traceback (most recent call last):\n  File "/0/app.py", line 13, in fail\nRuntimeError: boom\n' + PANIC_TAIL
    assert stderr_summary(stderr.encode()) == "the guest raised RuntimeError: boom"


def test_last_of_chained_exceptions_is_named() -> None:
    """With chained exceptions the last one, the one that escaped, is named."""
    stderr = (
        "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n  File \"a.py\", line 3\nValueError: no x\n"
    )
    assert stderr_summary(stderr.encode()) == "the guest raised ValueError: no x"


def test_exception_dumped_without_memory_is_named() -> None:
    """When CPython is out of memory it dumps the exception object; its repr is used."""
    stderr = (
        'Traceback (most recent call last):\n  File "/0/app.py", line 26, in allocate\n'
        "object address  : 0x480d68\nobject refcount : 2\nobject type     : 0x373230\n"
        "object type name: MemoryError\nobject repr     : MemoryError()\nlost sys.stderr\n" + PANIC_TAIL
    )
    assert stderr_summary(stderr.encode()) == "the guest raised MemoryError()"


def test_other_stderr_keeps_its_last_lines_without_runtime_noise() -> None:
    """Without a traceback, the last meaningful lines are quoted; empty stderr gives nothing."""
    assert stderr_summary(b"starting\nfatal: disk on fire\n" + PANIC_TAIL.encode()) == (
        "guest stderr: starting | fatal: disk on fire | thread '<unnamed>' (1) panicked at runtime/src/lib.rs:1280:25:"
    )
    assert stderr_summary(b"") is None
    assert stderr_summary(b"\n \n") is None


def test_captured_output_is_bounded_per_stream() -> None:
    """Writes append up to the limit of each stream; a cut stream's text ends with a line saying so."""
    output = CapturedOutput(limit=5)
    output.write("stdout", b"abc")
    output.write("stdout", b"defg")
    output.write("stderr", b"xy")
    assert output.stdout == b"abcde" and output.truncated
    assert output.text() == {
        "stdout": "abcde\n[output truncated: 2 more bytes not kept; the limit is 5 bytes per stream]\n",
        "stderr": "xy",
    }


def test_nothing_after_a_cut_is_kept() -> None:
    """Once a stream is cut, later writes only count as dropped, even one that would fit."""
    output = CapturedOutput(limit=5)
    output.write("stdout", b"abcdefg")
    output.write("stdout", b"\n")
    assert output.stdout == b"abcde" and output.dropped["stdout"] == 3
    assert output.text()["stdout"].endswith("[output truncated: 3 more bytes not kept; the limit is 5 bytes per stream]\n")


def test_a_cut_never_splits_a_character() -> None:
    """A limit falling inside a UTF-8 character keeps the text before it, with no U+FFFD."""
    output = CapturedOutput(limit=7)
    output.write("stdout", "ab€€".encode())  # 2 + 3 + 3 bytes: the limit falls in the second €
    assert output.stdout == "ab€".encode() and output.dropped["stdout"] == 3
    assert output.text()["stdout"] == "ab€\n[output truncated: 3 more bytes not kept; the limit is 7 bytes per stream]\n"


def test_a_character_split_between_writes_is_cut_whole() -> None:
    """A character whose first bytes came in an earlier write than the cut is dropped whole."""
    euro = "€".encode()
    output = CapturedOutput(limit=3)
    output.write("stderr", b"a" + euro[:1])
    output.write("stderr", euro[1:])
    assert output.stderr == b"a" and output.dropped["stderr"] == 3
    assert "\ufffd" not in output.text()["stderr"]


def test_a_split_character_within_the_limit_is_kept() -> None:
    """Within the limit, a character arriving in two writes is kept whole."""
    euro = "€".encode()
    output = CapturedOutput(limit=10)
    output.write("stdout", euro[:2])
    output.write("stdout", euro[2:] + b"!")
    assert output.text() == {"stdout": "€!"} and not output.truncated


def test_the_end_of_stderr_is_kept_past_the_limit() -> None:
    """A traceback printed after more stderr than the limit still names the exception."""
    output = CapturedOutput(limit=1024)
    output.write("stderr", "é".encode() * 40_000 + b"\n")
    output.write("stderr", b'Traceback (most recent call last):\n  File "/0/app.py", line 9, in run\nKeyError: \'id\'\n')
    assert len(output.stderr) == 1024 and output.truncated
    assert len(output.stderr_tail) <= STDERR_TAIL
    assert not output.stderr_tail.decode().startswith("\ufffd"), "the tail starts on a character"
    assert stderr_summary(output.stderr_tail) == "the guest raised KeyError: 'id'"


def test_the_last_traceback_is_quoted_whole() -> None:
    """The last traceback of stderr is returned from its first line to its exception line."""
    stderr = (
        "starting\nTraceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\n\n"
        "Traceback (most recent call last):\n  File \"/0/app.py\", line 30, in bad_input\n"
        "    raise ValueError(f\"bad input {n}\")\nValueError: bad input 42\n" + PANIC_TAIL
    )
    assert python_traceback(stderr.encode()) == (
        "Traceback (most recent call last):\n  File \"/0/app.py\", line 30, in bad_input\n"
        "    raise ValueError(f\"bad input {n}\")\nValueError: bad input 42"
    )
    assert python_traceback(b"no traceback here\n") is None


def test_a_long_traceback_keeps_its_outer_and_inner_calls() -> None:
    """A deep traceback is shortened in the middle, keeping where it started and where it raised."""
    frames = "".join(f'  File "/0/app.py", line {i}, in f{i}\n' for i in range(100))
    stderr = f"Traceback (most recent call last):\n{frames}RecursionError: too deep\n".encode()
    quoted = python_traceback(stderr, max_lines=10)
    assert quoted is not None
    lines = quoted.splitlines()
    assert len(lines) == 10
    assert lines[0] == "Traceback (most recent call last):" and lines[1].endswith("in f0")
    assert lines[5] == "  ... (93 lines not shown)"
    assert lines[-2].endswith("in f99") and lines[-1] == "RecursionError: too deep"


def test_a_character_split_between_chunks_is_decoded_once() -> None:
    """The stream decoder keeps a character's first bytes until the chunk that completes it."""
    decoder = StreamDecoder()
    euro = "€".encode()
    assert decoder.decode("stdout", b"price: " + euro[:1]) == "price: "
    assert decoder.decode("stderr", b"other stream") == "other stream"
    assert decoder.decode("stdout", euro[1:] + b"5\n") == "€5\n"
