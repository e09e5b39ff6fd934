"""The engine's JSON reader: the same values and errors as `json.loads`."""

from __future__ import annotations

import json

import pytest

from storage.db import loads

TEXTS = [
    "[]",
    "{}",
    '{"lat": 39.9, "lon": 116.4, "live": false}',
    '["cough", "fever"]',
    '"36.5"',
    "36.5",
    "null",
    ' {"a": [1, 2, {"b": null}]}\n',  # surrounding whitespace: through json.loads
    '{"名字": "张三", "e": "\\u00e9"}',
]


@pytest.mark.parametrize("text", TEXTS)
def test_reads_what_json_loads_reads(text: str) -> None:
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "[1,", "[1] x", "{'a': 1}", "nul"])
def test_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        loads(text)
