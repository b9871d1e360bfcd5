"""Generate the WIT a workflow author imports to call other components.

For an exported interface `ns:pkg/iface@v`, the extension package
`ns:pkg-dolmen-ext@v` has an interface `iface` with, per function `fn`:

  fn-submit:     func(join-set: borrow<join-set>, <params>) -> execution-id;
  fn-await-next: func(join-set: borrow<join-set>) -> result<tuple<execution-id, T>, await-next-error>;
  fn-get:        func(execution-id: execution-id) -> result<T, execution-error>;
  fn-schedule:   func(schedule-at: schedule-at, <params>) -> execution-id;

(`result<execution-id, await-next-error>` and `result<_, execution-error>`
when `fn` returns nothing.) The original interface is rendered too, so the
generated folder is a complete `deps/` for componentize-py and friends.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from importlib.resources import files

from ..ffqn import InterfaceName
from .render import render_interface
from .types import FunctionType, WitType, named_types

EXT_SUFFIX = "-dolmen-ext"
HOST_WIT_NAME = "dolmen-workflow.wit"
_HOST_TYPES = "dolmen:workflow/types@1.0.0"


def host_wit() -> str:
    """The text of Dolmen's workflow host package (`dolmen:workflow@1.0.0`)."""
    return files("dolmen.platform.wit").joinpath(HOST_WIT_NAME).read_text()


@dataclass(frozen=True, slots=True)
class WitPackage:
    """A generated package: where it goes in `deps/` and its text."""

    folder: str
    text: str


def _package_header(name: InterfaceName, suffix: str = "") -> str:
    version = f"@{name.version}" if name.version else ""
    return f"package {name.namespace}:{name.package}{suffix}{version};\n"


def _use_path(name: InterfaceName) -> str:
    return str(name)


def ext_interface(name: InterfaceName, functions: dict[str, FunctionType]) -> str:
    """The WIT text of the extension interface for one exported interface (`functions`: name -> signature)."""
    types: list[WitType] = []
    for fn in functions.values():
        for _, ty in fn.params:
            types.extend(named_types(ty))
        types.extend(named_types(fn.result))
    used: list[str] = []
    for ty in types:
        tname = getattr(ty, "name", None)
        if tname and tname not in used:
            used.append(tname)
    lines = [f"interface {name.interface} {{"]
    lines.append(f"  use {_HOST_TYPES}.{{join-set, execution-id, execution-error, await-next-error, schedule-at}};")
    if used:
        lines.append(f"  use {_use_path(name)}.{{{', '.join(used)}}};")
    lines.append("")
    for fname, fn in functions.items():
        params = "".join(f", {p}: {t.wit()}" for p, t in fn.params)
        plain = ", ".join(f"{p}: {t.wit()}" for p, t in fn.params)
        ok = f"tuple<execution-id, {fn.result.wit()}>" if fn.result else "execution-id"
        got = fn.result.wit() if fn.result else "_"
        lines.append(f"  /// Submit `{fname}` as a child into a join set.")
        lines.append(f"  {fname}-submit: func(join-set: borrow<join-set>{params}) -> execution-id;")
        lines.append(f"  /// Take the join set's next response, expected to be a `{fname}` child.")
        lines.append(f"  {fname}-await-next: func(join-set: borrow<join-set>) -> result<{ok}, await-next-error>;")
        lines.append(f"  /// The result of a `{fname}` child whose response `join-next` already took.")
        lines.append(f"  {fname}-get: func(execution-id: execution-id) -> result<{got}, execution-error>;")
        lines.append(f"  /// Start `{fname}` as a top-level execution, now or later.")
        sep = ", " if plain else ""
        lines.append(f"  {fname}-schedule: func(schedule-at: schedule-at{sep}{plain}) -> execution-id;")
    lines.append("}")
    return "\n".join(lines)


def generate(exports: dict[str, dict[str, FunctionType]], *, include_originals: bool = True) -> list[WitPackage]:
    """Packages for `deps/`: the host package, each original package and its extension.

    `exports` maps an interface name (`ns:pkg/iface@v`) to its functions by
    name; names that do not parse, and interfaces without functions, are left out.
    """
    by_package: dict[tuple[str, str, str | None], list[tuple[InterfaceName, dict[str, FunctionType]]]] = defaultdict(list)
    for iface_name, functions in exports.items():
        parsed = InterfaceName.try_parse(iface_name)
        if parsed is None or not functions:
            continue
        by_package[(parsed.namespace, parsed.package, parsed.version)].append((parsed, functions))
    out = [WitPackage("dolmen-workflow", host_wit())]
    for (ns, pkg, version), ifaces in sorted(by_package.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        slug = f"{ns}-{pkg}" + (f"-{version}" if version else "")
        if include_originals:
            body = "\n\n".join(render_interface(n.interface, f) for n, f in ifaces)
            out.append(WitPackage(slug, _package_header(ifaces[0][0]) + "\n" + body + "\n"))
        ext_body = "\n\n".join(ext_interface(n, f) for n, f in ifaces)
        out.append(WitPackage(f"{slug}{EXT_SUFFIX}", _package_header(ifaces[0][0], EXT_SUFFIX) + "\n" + ext_body + "\n"))
    return out
