"""The runner's JSON encoder (store/compact_json.py): the same values back as the standard library's, whatever orjson refuses."""

from __future__ import annotations

import json

import pytest

from dolmen.platform.store.compact_json import dumps

VALUES = [
    {"result": {"ok": [1, -2, 3.5, "ü €", None, True]}},
    {"failure": {"kind": "trap", "message": "line 1\nline 2 \"quoted\" \\ \u2028"}},
    {"result": 18_446_744_073_709_551_615},  # u64's largest: orjson takes it
    {"result": -9_223_372_036_854_775_808},  # s64's smallest
    {"result": 2**70},  # past 64 bits: orjson refuses, json.dumps writes it
    {1: "a key that is not a string", "b": 2},  # orjson refuses, json.dumps writes "1"
    [],
    "",
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_reads_back_as_json_dumps_reads_back(value: object) -> None:
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_what_json_dumps_refuses_is_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})
