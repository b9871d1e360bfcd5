"""Benchmark workflows: serial calls, a fan-out, one step, and a long hold."""

from wit_world import exports
from wit_world.imports import bench_act_dolmen_ext_trivial as ext, bench_act_trivial as act, host
from wit_world.imports.types import ClosingStrategy

VERSION = "1"


class Flows(exports.Flows):
    def serial(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += act.echo(i)
        return total

    def fan_out(self, n: int) -> int:
        js = host.new_join_set(ClosingStrategy.COMPLETE)
        for i in range(n):
            ext.echo_submit(js, i)
        total = 0
        for _ in range(n):
            _, value = ext.echo_await_next(js)
            total += value
        return total

    def one_step(self, x: int) -> int:
        return act.echo(x)

    def hold(self, ms: int) -> int:
        value = act.echo(ms)
        host.sleep(ms)
        return value
