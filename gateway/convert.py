"""Path and query strings to JSON values, by the WIT type of the parameter they bind to.

A path segment or query value is text; this turns it into the JSON form the
codec takes (which then checks ranges and shapes):
- string, char, enum: the text itself;
- bool: `true` or `false`; integers: decimal digits; floats: a decimal
  number or `NaN`, `Infinity`, `-Infinity`;
- option<T>: the conversion of T (an absent parameter is none);
- list<T> and flags in a query: one value per repetition (`?tag=a&tag=b`),
  or one JSON array;
- variant: a case name, or JSON; everything else (record, tuple, result,
  nested options): JSON text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..platform.errors import InvalidValueError
from ..platform.wit.codec import describe
from ..platform.wit.types import INT_RANGES, EnumT, FlagsT, ListT, OptionT, Prim, VariantT, WitType

_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_FLOAT_WORDS = ("NaN", "Infinity", "-Infinity")


def from_texts(texts: list[str], ty: WitType, path: str, where: str) -> Any:
    """The JSON value of a parameter given as one or more texts (`where`: 'path' or 'query').

    Raises `InvalidValueError` at `path` for a text that does not read as `ty` (see the module's list), or
    several texts for a type that takes one.
    """
    if isinstance(ty, OptionT) and not isinstance(ty.inner, OptionT):
        return from_texts(texts, ty.inner, path, where)
    if isinstance(ty, (ListT, FlagsT)):
        if len(texts) == 1 and texts[0].lstrip().startswith("["):
            return _json(texts[0], ty, path, where)
        element = ty.element if isinstance(ty, ListT) else Prim("string")
        return [from_text(t, element, f"{path}[{i}]", where) for i, t in enumerate(texts)]
    if len(texts) != 1:
        raise InvalidValueError(path, f"given {len(texts)} times in the {where}; a {ty.wit()} takes one value")
    return from_text(texts[0], ty, path, where)


def from_text(text: str, ty: WitType, path: str, where: str) -> Any:
    """The JSON value of one text for a parameter of type `ty`; `InvalidValueError` at `path` when it does not read so.

    Ranges and shapes are the codec's to check: this only parses (an integer of at most 64 characters, a
    float of at most 400).
    """
    if isinstance(ty, OptionT) and not isinstance(ty.inner, OptionT):
        return from_text(text, ty.inner, path, where)
    if isinstance(ty, Prim):
        return _prim(text, ty, path, where)
    if isinstance(ty, EnumT):
        return text
    if isinstance(ty, VariantT) and not text.lstrip().startswith(("{", '"')):
        return text
    return _json(text, ty, path, where)


def _prim(text: str, ty: Prim, path: str, where: str) -> Any:
    name = ty.name
    if name in ("string", "char"):
        return text
    if name == "bool":
        if text in ("true", "false"):
            return text == "true"
        raise InvalidValueError(path, f"expected true or false (bool) in the {where}, got {describe(text)}")
    if name in INT_RANGES:
        if not _INT.match(text) or len(text) > 64:
            raise InvalidValueError(path, f"expected an integer ({name}) in the {where}, got {describe(text)}")
        return int(text)
    if text in _FLOAT_WORDS:
        return text
    if not _FLOAT.match(text) or len(text) > 400:
        raise InvalidValueError(
            path, f'expected a number ({name}) or "NaN", "Infinity", "-Infinity" in the {where}, got {describe(text)}'
        )
    return float(text)


def _json(text: str, ty: WitType, path: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidValueError(
            path, f"a {ty.wit()} in the {where} is written as JSON; {describe(text)} is not valid JSON"
        ) from None
