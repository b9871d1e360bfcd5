"""Fully qualified function names: `namespace:package/interface@version.function`."""

from __future__ import annotations

import functools

import re
from dataclasses import dataclass

from .errors import InvalidNameError

_WORD = r"[a-z][a-z0-9]*|[A-Z][A-Z0-9]*"
_ID = rf"%?(?:{_WORD})(?:-(?:[a-z0-9]+|[A-Z0-9]+))*"
_SEMVER = (
    r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_ID_RE = re.compile(rf"^{_ID}\Z")
_SEMVER_RE = re.compile(rf"^{_SEMVER}\Z")
_IFACE_RE = re.compile(rf"^(?P<ns>{_ID}):(?P<pkg>{_ID})/(?P<iface>{_ID})(?:@(?P<ver>{_SEMVER}))?\Z")

_EXAMPLE = "for example 'demo:shop/orders@1.0.0.place'"


@dataclass(frozen=True, order=True, slots=True)
class InterfaceName:
    """A WIT interface name `namespace:package/interface[@version]`."""

    namespace: str
    package: str
    interface: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> InterfaceName:
        """Parse an interface name, raising `InvalidNameError` naming the problem."""
        match = _IFACE_RE.match(text)
        if match is None:
            raise InvalidNameError(
                f"'{text}' is not a WIT interface name; expected "
                "'namespace:package/interface@version', e.g. 'demo:shop/orders@1.0.0'"
            )
        return cls(match["ns"], match["pkg"], match["iface"], match["ver"])

    @classmethod
    def try_parse(cls, text: str) -> InterfaceName | None:
        """Parse an interface name, or return None when `text` is not one."""
        match = _IFACE_RE.match(text)
        return None if match is None else cls(match["ns"], match["pkg"], match["iface"], match["ver"])

    @property
    def package_name(self) -> str:
        """`namespace:package` without the version."""
        return f"{self.namespace}:{self.package}"

    def __str__(self) -> str:
        base = f"{self.namespace}:{self.package}/{self.interface}"
        return f"{base}@{self.version}" if self.version else base


@dataclass(frozen=True, order=True, slots=True)
class Ffqn:
    """A function in a WIT interface; the version is part of its identity."""

    interface: InterfaceName
    function: str

    @classmethod
    def parse(cls, text: str) -> Ffqn:
        """Parse `namespace:package/interface[@version].function`; raises `InvalidNameError`.

        The last few thousand names parsed are kept (a runner parses the same
        few on every attempt); a name that fails to parse is not.
        """
        return _parse_ffqn(text) if isinstance(text, str) else cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Ffqn:
        if not isinstance(text, str) or not text:
            raise InvalidNameError(f"a function name is required, {_EXAMPLE}")
        head, dot, function = text.rpartition(".")
        if not dot or "/" not in head:
            raise InvalidNameError(
                f"'{text}' is not a function name; expected "
                f"'namespace:package/interface@version.function', {_EXAMPLE}"
            )
        if not _ID_RE.match(function):
            raise InvalidNameError(
                f"'{text}': '{function}' is not a valid WIT function name "
                "(kebab-case words such as 'place-order')"
            )
        try:
            iface = InterfaceName.parse(head)
        except InvalidNameError:
            raise InvalidNameError(
                f"'{text}' is not a function name; expected "
                f"'namespace:package/interface@version.function', {_EXAMPLE}"
            ) from None
        return cls(iface, function)

    @classmethod
    def of(cls, interface: str, function: str) -> Ffqn:
        """Build from an interface name and a function name."""
        return cls(InterfaceName.parse(interface), function)

    def __str__(self) -> str:
        return f"{self.interface}.{self.function}"


def is_semver(text: str) -> bool:
    """Whether `text` is a semantic version such as `1.2.0`."""
    return _SEMVER_RE.match(text) is not None


def semver_compatible(provided: str | None, required: str | None) -> bool:
    """Whether an export at version `provided` satisfies an import of `required`.

    The rule wasmtime's linker applies: the same major version (for 0.x the
    same minor, for 0.0.x the same patch) and provided >= required. A
    pre-release only matches itself; build metadata is ignored. Unversioned
    names only match unversioned names, and malformed versions only match
    themselves exactly.
    """
    if provided is None or required is None:
        return provided == required
    if not (is_semver(provided) and is_semver(required)):
        return provided == required
    p_core, p_pre = _parse_semver(provided)
    r_core, r_pre = _parse_semver(required)
    if p_pre or r_pre:
        return (p_core, p_pre) == (r_core, r_pre)
    if p_core[0] != r_core[0]:
        return False
    if p_core[0] == 0 and p_core[1] != r_core[1]:
        return False
    if p_core[0] == 0 and p_core[1] == 0:
        return p_core == r_core
    return p_core >= r_core


def _parse_semver(version: str) -> tuple[tuple[int, int, int], str]:
    """(major, minor, patch) and the pre-release part of a valid semantic version."""
    core, _, pre = version.split("+", 1)[0].partition("-")
    major, minor, patch = core.split(".")
    return (int(major), int(minor), int(patch)), pre


@functools.lru_cache(maxsize=4096)
def _parse_ffqn(text: str) -> Ffqn:
    return Ffqn._parse(text)  # pyright: ignore[reportPrivateUsage]
