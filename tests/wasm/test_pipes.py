"""Guest output through pipes: nothing lost, nothing late, nothing to the wrong holder."""

from __future__ import annotations

import threading
from typing import IO, Any

from dolmen.platform.wasm.instances import OutputSwitch
from dolmen.platform.wasm.pipes import InstancePipes, OutputPump


class OpensItsFiles:
    """Stands in for `WasiConfig`: opens each output file when it is given, as wasmtime does."""

    def __init__(self) -> None:
        self.files: dict[str, IO[bytes]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        if name.endswith("_file"):
            self.files[name.removesuffix("_file")] = open(value, "wb", buffering=0)  # noqa: SIM115 - closed by the test
        else:
            super().__setattr__(name, value)

    def close(self) -> None:
        """What closing the store does to the instance's ends of the pipes."""
        for file in self.files.values():
            file.close()


def test_more_than_a_pipe_holds_arrives_whole_and_in_order() -> None:
    """A guest writing far more than a pipe holds is not blocked for good, and every byte arrives in order."""
    got: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    pipes = InstancePipes(lambda stream, data: got[stream].extend(data), OutputPump())
    wasi = OpensItsFiles()
    pipes.attach(wasi)  # type: ignore[arg-type]
    written = bytes(range(256)) * 4096  # 1 MiB: the writer waits for the pump to drain the pipe
    writer = threading.Thread(target=lambda: (wasi.files["stdout"].write(written), wasi.files["stderr"].write(b"done\n")))
    writer.start()
    writer.join(timeout=60)
    assert not writer.is_alive(), "the writer stayed blocked on a full pipe"
    wasi.close()
    pipes.close()
    assert got == {"stdout": bytearray(written), "stderr": bytearray(b"done\n")}


def test_a_new_target_gets_nothing_written_before_it() -> None:
    """What an instance wrote before its target changed goes to the previous target, even if unread."""
    switch = OutputSwitch(OutputPump())
    wasi = OpensItsFiles()
    switch.attach(wasi)  # type: ignore[arg-type]
    first: list[bytes] = []
    second: list[bytes] = []
    switch.target = lambda stream, data: first.append(data)
    wasi.files["stdout"].write(b"call 1\n")
    switch.target = lambda stream, data: second.append(data)
    wasi.files["stdout"].write(b"call 2\n")
    wasi.close()
    switch.close()
    assert b"".join(first) == b"call 1\n" and b"".join(second) == b"call 2\n"


def test_output_without_a_target_is_dropped() -> None:
    """A spare's output (no target yet) reaches nobody, not the call that takes it later."""
    switch = OutputSwitch(OutputPump())
    wasi = OpensItsFiles()
    switch.attach(wasi)  # type: ignore[arg-type]
    wasi.files["stderr"].write(b"warming up\n")
    seen: list[bytes] = []
    switch.target = lambda stream, data: seen.append(data)
    wasi.files["stderr"].write(b"working\n")
    wasi.close()
    switch.close()
    assert b"".join(seen) == b"working\n"


def test_pooled_pipes_serve_one_instance_at_a_time_and_are_made_once() -> None:
    """An instance gives its pipes back drained; the next one gets them, and none of the previous bytes."""
    pump = OutputPump(max_idle=4)
    outputs: list[dict[str, bytearray]] = []
    paths: list[set[str]] = []
    for n in range(20):
        got: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        outputs.append(got)
        pipes = InstancePipes(lambda stream, data, got=got: got[stream].extend(data), pump)
        wasi = OpensItsFiles()
        pipes.attach(wasi)  # type: ignore[arg-type]
        paths.append({f.name for f in wasi.files.values()})  # type: ignore[misc]
        wasi.files["stdout"].write(f"out {n}\n".encode() * (n + 1))
        wasi.files["stderr"].write(f"err {n}\n".encode())
        wasi.close()
        pipes.close()
    for n, got in enumerate(outputs):
        assert got == {"stdout": bytearray(f"out {n}\n".encode() * (n + 1)), "stderr": bytearray(f"err {n}\n".encode())}
    assert all(p == paths[0] for p in paths)  # the same two pipes throughout
    pump.close()


def test_a_pump_read_for_a_pipe_given_back_delivers_nothing_to_its_old_holder() -> None:
    """The pump's thread may wake for a pipe just handed on: only the pipe's current holder reads it."""
    pump = OutputPump()
    old: list[bytes] = []
    first = InstancePipes(lambda stream, data: old.append(data), pump)
    wasi = OpensItsFiles()
    first.attach(wasi)  # type: ignore[arg-type]
    wasi.close()
    pipe = first._pipes["stdout"]  # pyright: ignore[reportPrivateUsage]
    first.close()
    new: list[bytes] = []
    second = InstancePipes(lambda stream, data: new.append(data), pump)
    wasi = OpensItsFiles()
    second.attach(wasi)  # type: ignore[arg-type]
    wasi.files["stdout"].write(b"mine\n")
    first.pump(pipe)  # a late wake-up meant for the old holder
    wasi.close()
    second.close()
    assert old == [] and b"".join(new) == b"mine\n"
    pump.close()
