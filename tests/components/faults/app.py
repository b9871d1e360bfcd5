"""Faults guest: traps, loops, memory hogs and err results for host tests."""

import os
import struct
import sys

from componentize_py_types import Err
from wit_world import exports

_calls = 0


class Faults(exports.Faults):
    def fail(self, message: str) -> str:
        raise RuntimeError(message)

    def spin(self) -> int:
        n = 0
        while True:
            n += 1

    def divide(self, a: int, b: int) -> int:
        if b == 0:
            raise Err(f"cannot divide {a} by zero")
        return a // b

    def allocate(self, mebibytes: int) -> int:
        blocks = [bytearray(b"x" * (1024 * 1024)) for _ in range(mebibytes)]
        return len(blocks)

    def nan_bits(self, bits: int) -> int:
        (value,) = struct.unpack("<d", struct.pack("<Q", bits))
        (out,) = struct.unpack("<Q", struct.pack("<d", value * 1.0))
        return out

    def chatty(self, text: str) -> str:
        print(f"out: {text}")
        print(f"err: {text}", file=sys.stderr)
        return text.upper()

    def env(self, name: str) -> str | None:
        return os.environ.get(name)

    def count(self) -> int:
        global _calls
        _calls += 1
        print(f"call {_calls}")
        return _calls

    def blob(self, size: int) -> bytes:
        return bytes(size)

    def text(self, size: int) -> str:
        return "x" * size

    def measure(self, data: bytes) -> int:
        return len(data)

    def long_print(self, text: str, copies: int) -> int:
        line = text * copies
        print(line)
        print(line, file=sys.stderr)
        return len(line.encode()) + 1

    def fail_after_noise(self, noise: int, message: str) -> str:
        print("n" * noise, file=sys.stderr)
        raise RuntimeError(message)
