"""Workflows calling workflows: direct child calls, join sets, scheduling."""

from wit_world import exports
from wit_world.imports import host, testing_wf_dolmen_ext_flows as ext, testing_wf_flows as flows
from wit_world.imports.types import ClosingStrategy, ScheduleAt_In


class Parents(exports.Parents):
    def nested(self, n: int) -> tuple[int, int]:
        serial = flows.serial(n)
        js = host.new_join_set(ClosingStrategy.COMPLETE)
        ext.fan_out_submit(js, n)
        _, fanned = ext.fan_out_await_next(js)
        return serial, fanned

    def hold(self, ms: int) -> str:
        return flows.cancellable(ms)

    def later(self, n: int, delay_ms: int) -> str:
        return ext.serial_schedule(ScheduleAt_In(delay_ms), n)
