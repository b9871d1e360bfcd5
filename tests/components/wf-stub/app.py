"""Workflows that wait for results supplied from outside: calls of the stub-approvals stub."""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host, testing_stub_approvals as approvals, testing_stub_dolmen_ext_approvals as ext
from wit_world.imports.types import ClosingStrategy, ResponseId_Delay


def _decision(value: object) -> str:
    if isinstance(value, Ok):
        return f"approved by {value.value}"
    if isinstance(value, Err):
        return f"refused: {value.value}"
    return f"approved by {value}"


class Waits(exports.Waits):
    def ask(self, request: str) -> str:
        try:
            return _decision(approvals.approve(request))
        except Err as refused:
            return f"refused: {refused.value}"

    def ask_within(self, request: str, timeout_ms: int) -> str:
        js = host.new_join_set(ClosingStrategy.CANCEL)
        child = ext.approve_submit(js, request)
        host.submit_delay(js, timeout_ms)
        first = host.join_next(js)
        if isinstance(first, ResponseId_Delay):
            return "timeout"
        return _decision(ext.approve_get(child))

    def double_score(self, key: str) -> int:
        return 2 * approvals.score(key)
