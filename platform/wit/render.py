"""Render interfaces back as WIT text (for `platform wit` and generated packages)."""

from __future__ import annotations

from collections.abc import Iterable

from .types import EnumT, FlagsT, FunctionType, RecordT, VariantT, WitType, named_types


def definition(ty: WitType) -> str | None:
    """The WIT definition of a named type, or None for anonymous ones."""
    if isinstance(ty, (RecordT, VariantT, EnumT, FlagsT)) and ty.name:
        return ty.definition()
    return None


def render_interface(
    name: str,
    functions: dict[str, FunctionType],
    *,
    extra_types: Iterable[WitType] = (),
    uses: Iterable[str] = (),
    resources: Iterable[str] = (),
    indent: str = "  ",
) -> str:
    """`interface name { ... }` with the named types its functions need, defined inline."""
    lines = [f"interface {name} {{"]
    for use in uses:
        lines.append(f"{indent}{use}")
    seen: set[str] = set()
    types: list[WitType] = list(extra_types)
    for fn in functions.values():
        for _, pty in fn.params:
            types.extend(named_types(pty))
        types.extend(named_types(fn.result))
    for res in resources:
        lines.append(f"{indent}resource {res};")
    for ty in types:
        text = definition(ty)
        tname = getattr(ty, "name", None)
        if text is None or tname in seen:
            continue
        seen.add(tname or "")
        lines.extend(indent + line for line in text.splitlines())
    for fname, fn in functions.items():
        lines.append(f"{indent}{fname}: {fn.wit()};")
    lines.append("}")
    return "\n".join(lines)
