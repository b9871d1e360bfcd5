"""Greeter 1.0.0: `greet`, a resource-typed interface, and a world-level export."""

from counters import Counter
from wit_world import WitWorld as WorldBase
from wit_world import exports
from wit_world.exports import greet


class WitWorld(WorldBase):
    def version(self) -> str:
        return "1.0.0"


class Greet(exports.Greet):
    def greet(self, name: str) -> str:
        return f"Hello, {name}!"

    def compose(self, name: str, times: int) -> greet.Greeting:
        return greet.Greeting(text=" ".join([f"Hello, {name}!"] * times), shout=False)


class Counters(exports.Counters):
    def make_counter(self, start: int) -> Counter:
        return Counter(start)

    def peek(self, c: Counter) -> int:
        return c.value

    def count_to(self, n: int) -> list[int]:
        return list(range(1, n + 1))
