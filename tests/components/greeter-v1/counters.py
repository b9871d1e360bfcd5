"""The exported `counter` resource: componentize-py looks for it in a module named after its interface."""

from wit_world.exports import counters


class Counter(counters.Counter):
    def __init__(self, start: int) -> None:
        self.value = start

    def next(self) -> int:
        self.value += 1
        return self.value
