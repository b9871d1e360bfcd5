"""Greeter 2.0.0: a changed `greet` that reports to an imported `audit` interface."""

from wit_world import exports
from wit_world.imports import audit


class Greet(exports.Greet):
    def greet(self, name: str, excited: bool) -> str:
        audit.record_event(f"greeted {name}")
        return f"Hello, {name}{'!' if excited else '.'}"
