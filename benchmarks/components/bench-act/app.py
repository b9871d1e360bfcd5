"""A trivial activity: the benchmarks measure the platform, not the work."""

from wit_world import exports


class Trivial(exports.Trivial):
    def echo(self, x: int) -> int:
        return x + 1
