"""Workflows that continue as new: a counting chain, one that never does, and bad params."""

import json

from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import ClosingStrategy


class Flows(exports.Flows):
    def count(self, count: int, until: int, steps: int) -> int:
        for _ in range(steps):
            host.new_join_set(ClosingStrategy.COMPLETE)
        if count < until:
            host.continue_as_new(json.dumps([count + 1, until, steps]))
        return count

    def forever(self) -> int:
        while True:
            host.new_join_set(ClosingStrategy.COMPLETE)

    def bad_params(self, how: str) -> int:
        params = {
            "type": json.dumps([5]),
            "arity": json.dumps(["type", "extra"]),
            "json": "[1,",
            "name": json.dumps({"count": 1}),
        }[how]
        host.continue_as_new(params)
        return 0

    def naps(self, n: int, ms: int) -> int:
        for _ in range(n):
            host.sleep(ms)
        return n
