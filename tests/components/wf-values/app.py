"""Workflows that move large values: params of a child call, and their own result."""

from wit_world import exports
from wit_world.imports import faults


class Flows(exports.Flows):
    def send_bytes(self, size: int) -> int:
        return faults.measure(bytes(size))

    def make_bytes(self, size: int) -> bytes:
        return bytes(size)
