"""Read YAML with the line of every value, for error messages that point at it.

`load_document` composes the node tree with PyYAML's safe loader (the same
resolver and constructors as `yaml.safe_load`), and `Reader` walks it: each
accessor returns a plain value and records a problem, with file, line and key
path, when the value does not fit. Problems are collected so that one run
reports every mistake in a file, not only the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import DeploymentError

_VAR = re.compile(r"\$\$|\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a value is: the file, its 1-based line, and its key path (`components[0].retry`)."""

    file: str
    line: int
    key: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}" if self.key else f"{self.file}:{self.line}"

    def child(self, key: str | int, line: int) -> Location:
        """The location of a key (str) or an item (int) below this one."""
        if isinstance(key, int):
            path = f"{self.key}[{key}]"
        else:
            path = f"{self.key}.{key}" if self.key else key
        return Location(self.file, line, path)


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a file."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def raise_problems(file: str, problems: list[Problem]) -> None:
    """Raise one `DeploymentError` listing every problem (nothing if there are none)."""
    if not problems:
        return
    if len(problems) == 1:
        raise DeploymentError(f"{problems[0]}; nothing was deployed")
    lines = "\n".join(f"  {p}" for p in problems)
    raise DeploymentError(f"{file} has {len(problems)} problems; nothing was deployed:\n{lines}")


def load_document(text: str, file: str) -> yaml.Node | None:
    """The node tree of a one-document YAML text (None when it is empty)."""
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise DeploymentError(f"{file}:{line}: not valid YAML: {problem}; fix the syntax and deploy again") from None
    except yaml.YAMLError as exc:
        raise DeploymentError(f"{file}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _construct_scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    finally:
        loader.dispose()


@dataclass
class Reader:
    """Turns nodes into values, collecting problems; `${NAME}` comes from `env`."""

    file: str
    env: Mapping[str, str]
    problems: list[Problem] = field(default_factory=list)

    def problem(self, where: Location, message: str) -> None:
        self.problems.append(Problem(where, message))

    def root(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1)

    # ------------------------------------------------------------ shapes

    def mapping(self, node: yaml.Node, where: Location, allowed: tuple[str, ...]) -> dict[str, tuple[Location, yaml.Node]]:
        """The keys of a mapping node with their locations; unknown and repeated keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(where, f"expected a mapping with keys {', '.join(allowed)}, got {_describe(node)}")
            return {}
        out: dict[str, tuple[Location, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = _construct_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                self.problem(Location(self.file, line, where.key), f"keys must be strings, got {_describe(key_node)}")
                continue
            here = where.child(key, line)
            if key not in allowed:
                self.problem(here, f"unknown key '{key}'; allowed keys here: {', '.join(allowed)}")
                continue
            if key in out:
                self.problem(here, f"key '{key}' appears twice; keep one")
                continue
            out[key] = (here, value_node)
        return out

    def sequence(self, node: yaml.Node, where: Location) -> list[tuple[Location, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(where, f"expected a list, got {_describe(node)}")
            return []
        return [(where.child(i, item.start_mark.line + 1), item) for i, item in enumerate(node.value)]

    # ----------------------------------------------------------- scalars

    def scalar(self, node: yaml.Node, where: Location) -> Any:
        """A scalar's value with `${NAME}` references replaced; None (and a problem) if it is not a scalar."""
        if not isinstance(node, yaml.ScalarNode):
            self.problem(where, f"expected a single value, got {_describe(node)}")
            return None
        value = _construct_scalar(node)
        if not isinstance(value, str) or "$" not in value:
            return value
        substituted = self._substitute(value, where)
        if substituted is None:
            return None
        if node.style is None and substituted != value:
            # An unquoted `${N}` reads like the value written in its place: `5` is a number.
            try:
                reparsed = yaml.safe_load(substituted)
            except yaml.YAMLError:
                return substituted
            if isinstance(reparsed, (str, int, float, bool)):
                return reparsed
        return substituted

    def _substitute(self, text: str, where: Location) -> str | None:
        failed = False

        def replace(match: re.Match[str]) -> str:
            nonlocal failed
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if not _VAR_NAME.match(name):
                self.problem(where, f"'${{{name}}}' is not a valid variable reference; write ${{NAME}} with letters, digits and '_'")
                failed = True
                return ""
            if name not in self.env:
                self.problem(
                    where,
                    f"environment variable {name} is not set; export {name}=... before deploying "
                    "(or write $${...} for a literal '${')",
                )
                failed = True
                return ""
            return self.env[name]

        out = _VAR.sub(replace, text)
        return None if failed else out

    def string(self, node: yaml.Node, where: Location, *, pattern: re.Pattern[str] | None = None, hint: str = "") -> str | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(where, f"expected a string, got {_describe_value(value)}")
            return None
        if not value:
            self.problem(where, "must not be empty")
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(where, f"'{value}' is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def choice(self, node: yaml.Node, where: Location, choices: tuple[str, ...]) -> str | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        if not isinstance(value, str):
            # YAML reads `yes`, `on` or `true` as a boolean and `1` as a number.
            self.problem(where, f"expected one of: {', '.join(choices)}; got {_describe_value(value)}")
            return None
        if value not in choices:
            self.problem(where, f"'{value}' is not one of: {', '.join(choices)}")
            return None
        return value

    def integer(self, node: yaml.Node, where: Location, *, minimum: int | None = None) -> int | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, f"expected a whole number, got {_describe_value(value)}")
            return None
        if minimum is not None and value < minimum:
            self.problem(where, f"must be at least {minimum}, got {value}")
            return None
        return value

    def boolean(self, node: yaml.Node, where: Location) -> bool | None:
        value = self.scalar(node, where)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.problem(where, f"expected true or false, got {_describe_value(value)}")
            return None
        return value


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = _construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None
    return _describe_value(value)


def _describe_value(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"'{value}'"
