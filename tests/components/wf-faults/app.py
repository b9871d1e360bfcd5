"""Workflows for the fault tests: a direct call of a slow activity, sleeps with children, guest exceptions."""

import sys

from wit_world import exports
from wit_world.imports import host, testing_act_basic as act, testing_act_dolmen_ext_basic as ext
from wit_world.imports.types import ClosingStrategy


class Calls(exports.Calls):
    def slow_call(self, ms: int, tag: str) -> str:
        return act.slow(ms, tag)

    def busy(self, n: int, sleep_ms: int) -> int:
        host.sleep(sleep_ms)
        js = host.new_join_set(ClosingStrategy.COMPLETE)
        for i in range(1, n + 1):
            ext.double_submit(js, i)
        total = 0
        for _ in range(n):
            _, value = ext.double_await_next(js)
            total += value
        total += sum(act.double(i) for i in range(1, n + 1))
        host.sleep(sleep_ms)
        return total

    def chatty_call(self, n: int) -> int:
        print(f"before double({n})")
        doubled = act.double(n)
        print(f"after double({n}) = {doubled}")
        return doubled

    def bad_input(self, n: int) -> str:
        print(f"checking input {n}")
        print(f"input {n} looks wrong", file=sys.stderr)
        raise ValueError(f"bad input {n}")

    def read_file(self, path: str) -> str:
        with open(path) as f:
            return f.read()
