"""Test workflow `testing:wf/flows@2.0.0`: a new major version of wf-basic's `serial`."""

from wit_world import exports
from wit_world.imports import basic as act


class Flows(exports.Flows):
    def serial(self, n: int) -> str:
        return f"v2:{sum(act.double(i) for i in range(1, n + 1))}"
