"""JSON text of the values a runner writes on every call (a commit's spec, a finish's outcome and response).

orjson encodes these in about a tenth of the standard library's time, and a
serial call writes several of them: about 4% of a runner's CPU per call with
light guests (benchmarks/, `--guest light`). The text differs from
`json.dumps`'s (no spaces, UTF-8 instead of `\\u` escapes) but is read back
only as JSON: by the scripts (cjson) and by `json.loads`, never compared as
text. Outbox messages, whose text is compared by prefix (outbox.py
`applies_directly`), and values compared as text (a create's params) keep
`json.dumps`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """`value` as JSON text; what orjson refuses (integers past 64 bits, keys that are not strings) as `json.dumps` writes it.

    Raises `TypeError` or `ValueError` for what `json.dumps` refuses too.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


__all__ = ["dumps"]
