"""Read YAML with the line of every value, for error messages that point at it.

`load_document` composes the node tree with PyYAML's safe loader, and `Reader`
walks it: each accessor returns a plain value and records a problem, with file,
line and key path, when the value does not fit. Problems are collected so that
one run reports every mistake in a file, not only the first.

Values are read from the text written, never from YAML's implicit types: PyYAML
follows YAML 1.1, which reads an unquoted `NO` as false, `0755` as 493, `12:30`
as 750 and `1.10` as 1.1, so an environment variable or a name would not reach
the platform as written. Each accessor parses the text itself instead (a whole
number is decimal digits, a boolean is true/false/yes/no/on/off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import DeploymentError

_VAR = re.compile(r"\$\$|\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_WHOLE_NUMBER = re.compile(r"^[-+]?[0-9]+\Z")
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_NULLS = ("", "~", "null", "Null", "NULL")
_STR_TAG = "tag:yaml.org,2002:str"
_SURROGATE = re.compile(r"[\ud800-\udfff]")


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


class TaggedScalarNode(yaml.ScalarNode):
    """A scalar the file gave a tag (`!!int 5`, `!secret x`): a tag YAML would infer anyway leaves no other trace."""


class _Loader(yaml.SafeLoader):
    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:  # the anchor's name (types-PyYAML says a dict)
        # PyYAML's own, except that an explicitly tagged scalar is a TaggedScalarNode.
        event = self.get_event()
        tag, value, start, end = event.tag, event.value, event.start_mark, event.end_mark
        if tag is None or tag == "!":
            tag = self.resolve(yaml.ScalarNode, value, event.implicit)
            node = yaml.ScalarNode(tag, value, start, end, style=event.style)
        else:
            node = TaggedScalarNode(tag, value, start, end, style=event.style)
        if anchor is not None:
            self.anchors[anchor] = node
        return node


def load_document(text: str, file: str) -> yaml.Node | None:
    """The node tree of a one-document YAML text (None when it is empty); `DeploymentError` naming the line when
    it is not valid YAML (or holds several documents)."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise DeploymentError(f"{file}:{line}: not valid YAML: {problem}; {_syntax_fix(problem)}") from None
    except yaml.YAMLError as exc:
        raise DeploymentError(f"{file}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _syntax_fix(problem: str) -> str:
    """How to fix a YAML syntax error, from PyYAML's `problem` text.

    A plain value that starts with `*` or `&` is read as an alias or an anchor (YAML 1.2.2, §6.9.2 and §7.1), so
    `allowed_hosts: [*.example.org]` fails with PyYAML's "expected alphabetic or numeric character"
    or "found undefined alias"; `@` and a backtick cannot start a plain value at all.
    """
    if problem.startswith(("expected alphabetic or numeric character", "found undefined alias")):
        return "a value that starts with * or & is read as a YAML alias or anchor: quote it (e.g. \"*.example.org\") and deploy again"
    if problem.startswith("found character") and "that cannot start any token" in problem:
        return "a value that starts with this character must be quoted (e.g. \"@team\"): quote it and deploy again"
    return "fix the syntax and deploy again"


def _written_tag(node: yaml.ScalarNode) -> str | None:
    """The tag a scalar was given in the file, None when it has none or `!!str` (which changes nothing)."""
    if not isinstance(node, TaggedScalarNode) or node.tag == _STR_TAG:
        return None
    return node.tag.replace("tag:yaml.org,2002:", "!!")


@dataclass
class Reader:
    """Turns nodes into values, collecting problems; `${NAME}` comes from `env`."""

    file: str
    env: Mapping[str, str]
    problems: list[Problem] = field(default_factory=list)

    def problem(self, where: Location, message: str) -> None:
        """Record a problem at `where` (`raise_problems` reports them all at the end)."""
        self.problems.append(Problem(where, message))

    def root(self, node: yaml.Node) -> Location:
        """The location of the document's top node (no key path)."""
        return Location(self.file, node.start_mark.line + 1)

    # ------------------------------------------------------------ shapes

    def mapping(self, node: yaml.Node, where: Location, allowed: tuple[str, ...]) -> dict[str, tuple[Location, yaml.Node]]:
        """The keys of a mapping node with their locations; unknown and repeated keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(where, f"expected a mapping with keys {', '.join(allowed)}, got {_describe(node)}")
            return {}
        out: dict[str, tuple[Location, yaml.Node]] = {}
        for key_node, value_node in node.value:
            # The key as written: `on:` is the key 'on', not the boolean YAML 1.1 reads.
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is None:
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
        """The items of a list node with their locations (`key[i]`); a problem and [] if it is not a list."""
        if not isinstance(node, yaml.SequenceNode):
            self.problem(where, f"expected a list, got {_describe(node)}")
            return []
        return [(where.child(i, item.start_mark.line + 1), item) for i, item in enumerate(node.value)]

    # ----------------------------------------------------------- scalars

    def text(self, node: yaml.Node, where: Location) -> str | None:
        """A scalar's text as written, with `${NAME}` replaced; None (and a problem) if it is not usable text."""
        if not isinstance(node, yaml.ScalarNode):
            self.problem(where, f"expected a single value, got {_describe(node)}")
            return None
        tag = _written_tag(node)
        if tag is not None:
            self.problem(where, f"the tag {tag} does not apply here: deployment values are read as the text written; remove the tag")
            return None
        # A substituted value is text too: `${N}` with N=NO gives 'NO', as writing NO in its place does.
        text = self._substitute(node.value, where) if "$" in node.value else node.value
        if text is not None and not self._printable(text, where):
            return None
        return text

    def _printable(self, text: str, where: Location) -> bool:
        # Env values, paths and Redis keys are C strings or UTF-8: a NUL would cut the value short
        # without a word, and a lone surrogate (from a "\ud800" escape) cannot be encoded at all.
        if "\0" in text:
            self.problem(where, "contains the NUL character (\\0), which would cut the value short; remove it")
            return False
        if (bad := _SURROGATE.search(text)) is not None:
            self.problem(
                where,
                f"contains \\u{ord(bad.group()):04x}, half of a UTF-16 surrogate pair, which is not a character; "
                "write the character itself or its \\U00XXXXXX escape",
            )
            return False
        return True

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
        """Non-empty text as written (`NO` stays 'NO'), optionally matching `pattern`."""
        value = self.text(node, where)
        if value is None:
            return None
        if not value:
            self.problem(where, "must not be empty")
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(where, f"'{value}' is not valid{': ' + hint if hint else ''}")
            return None
        return value

    def choice(self, node: yaml.Node, where: Location, choices: tuple[str, ...]) -> str | None:
        """The text if it is one of `choices`, else None and a problem listing them."""
        value = self.text(node, where)
        if value is None:
            return None
        if value not in choices:
            self.problem(where, f"'{value}' is not one of: {', '.join(choices)}")
            return None
        return value

    def integer(
        self, node: yaml.Node, where: Location, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        """A whole number in decimal digits: `010` is ten, and `0x1F` or `12:30` are refused, not read as 31 or 750."""
        text = self.text(node, where)
        if text is None:
            return None
        if not _WHOLE_NUMBER.match(text.strip()):
            self.problem(where, f"expected a whole number, got '{text}'; write it in decimal digits, e.g. 5")
            return None
        value = int(text)
        if minimum is not None and value < minimum:
            self.problem(where, f"must be at least {minimum}, got {value}")
            return None
        if maximum is not None and value > maximum:
            self.problem(where, f"must be at most {maximum:,}, got {value:,}")
            return None
        return value

    def boolean(self, node: yaml.Node, where: Location) -> bool | None:
        """true/yes/on or false/no/off (any case), else None and a problem."""
        text = self.text(node, where)
        if text is None:
            return None
        value = _BOOLEANS.get(text.strip().lower())
        if value is None:
            self.problem(where, f"expected true or false, got '{text}'")
            return None
        return value


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.value in _NULLS:
        return "nothing (null)"
    return f"'{node.value}'"
