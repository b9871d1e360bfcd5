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
    """`interface name { ... }` with the named types its functions need, defined inline.

    Resource constructors, methods and static functions (exported by the
    component model as `[constructor]r`, `[method]r.f`, `[static]r.f`) are
    written inside their `resource r { ... }` block.
    """
    lines = [f"interface {name} {{"]
    for use in uses:
        lines.append(f"{indent}{use}")
    seen: set[str] = set()
    types: list[WitType] = list(extra_types)
    for fn in functions.values():
        for _, pty in fn.params:
            types.extend(named_types(pty))
        types.extend(named_types(fn.result))
    members: dict[str, list[str]] = {res: [] for res in resources}
    plain: list[str] = []
    for fname, fn in functions.items():
        member = _resource_member(fname, fn)
        if member is None:
            plain.append(f"{fname}: {fn.wit()};")
        else:
            resource, text = member
            members.setdefault(resource, []).append(text)
    for res, texts in members.items():
        if not texts:
            lines.append(f"{indent}resource {res};")
            continue
        lines.append(f"{indent}resource {res} {{")
        lines.extend(f"{indent}{indent}{text}" for text in texts)
        lines.append(f"{indent}}}")
    for ty in types:
        text = definition(ty)
        tname = getattr(ty, "name", None)
        if text is None or tname in seen:
            continue
        seen.add(tname or "")
        lines.extend(indent + line for line in text.splitlines())
    lines.extend(indent + text for text in plain)
    lines.append("}")
    return "\n".join(lines)


def _resource_member(fname: str, fn: FunctionType) -> tuple[str, str] | None:
    """(resource, WIT text) for a resource's constructor, method or static function."""
    if fname.startswith("[constructor]"):
        resource = fname.removeprefix("[constructor]")
        params = ", ".join(f"{n}: {t.wit()}" for n, t in fn.params)
        return resource, f"constructor({params});"
    for prefix, keyword, skip in (("[method]", "func", 1), ("[static]", "static func", 0)):
        if fname.startswith(prefix):
            resource, _, member = fname.removeprefix(prefix).partition(".")
            # A method's first parameter is `self: borrow<resource>`, implicit in WIT.
            sig = FunctionType(fn.params[skip:], fn.result).wit().removeprefix("func")
            return resource, f"{member}: {keyword}{sig};"
    return None
