"""Captured guest output and the one-line summary of a failed guest's stderr."""

from __future__ import annotations

from dolmen.platform.wasm.output import CapturedOutput, ReleaseTracker, stderr_summary

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
    """Writes append up to the limit of each stream and flag truncation."""
    output = CapturedOutput(limit=5)
    output.write("stdout", b"abc")
    output.write("stdout", b"defg")
    output.write("stderr", b"xy")
    assert output.stdout == b"abcde" and output.truncated
    assert output.text() == {"stdout": "abcde", "stderr": "xy"}


def test_release_tracker_waits_for_wrapped_callbacks() -> None:
    """A tracked callback still works, and `wait` returns True only once it has been released."""
    tracker = ReleaseTracker()
    seen: list[bytes] = []
    callback = tracker.track(seen.append)
    callback(b"data")
    assert seen == [b"data"]
    assert not tracker.wait(timeout=0.05)
    del callback
    assert tracker.wait(timeout=1)
    assert tracker.wait(timeout=0)


def test_an_output_switch_keeps_no_hold_on_the_callbacks_it_gave_out() -> None:
    """Once wasmtime drops them, the switch's callbacks are released at once: a store's close
    never waits out the release timeout (a switch holding them made every call take 2 s)."""
    from wasmtime import WasiConfig

    from dolmen.platform.wasm.instances import OutputSwitch

    tracker = ReleaseTracker()
    switch = OutputSwitch(tracker)
    seen: list[tuple[str, bytes]] = []
    switch.target = lambda stream, data: seen.append((stream, data))
    wasi = WasiConfig()
    switch.attach(wasi)
    del wasi
    assert tracker.wait(timeout=1.0)
    assert switch.target is not None  # the switch itself lives on
