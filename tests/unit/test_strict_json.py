"""``strict_loads`` reads with orjson where it can; it must take every text for the value the
reference reader (the function runtimes' ``loads_strict``) takes, and refuse what it
refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.records import dumps, strict_loads
from pipeline.runtime.shim import loads_strict

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)


def outcome(read: Any, text: bytes) -> tuple[str, Any]:
    try:
        return "value", typed(read(text))
    except ValueError:
        return "refused", None


def typed(value: Any) -> Any:
    """The value with each scalar's type beside it: 1 and 1.0, equal in Python, differ."""
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return type(value).__name__, value


def reference(text: bytes) -> Any:
    return loads_strict(text.decode("utf-8"))


def agree(text: bytes) -> None:
    assert outcome(strict_loads, text) == outcome(reference, text), text[:200]


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_any_json_value_reads_as_the_reference_reads_it(value: Any) -> None:
    agree(json.dumps(value, ensure_ascii=False).encode())
    agree(json.dumps(value).encode())  # \\u escapes


@settings(max_examples=400, deadline=None)
@given(VALUES.map(lambda v: [[[v]] * 100]))
def test_long_texts_of_many_brackets_read_as_the_reference_reads_them(value: Any) -> None:
    agree(json.dumps(value).encode())


@settings(max_examples=400, deadline=None)
@given(st.integers(250, 270), st.integers(0, 270), st.sampled_from(["[]", "{}"]),
       st.sampled_from(["", "]", "],[0", ",", " ", "[", "1"]))
def test_nestings_about_the_limit_read_as_the_reference_reads_them(
        depth: int, closed: int, pair: str, tail: str) -> None:
    level = '{"k":' if pair == "{}" else "["  # each level a key's value, or a list's item
    text = level * depth + "1" + pair[1] * min(closed, depth) + tail
    agree(text.encode())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_are_read_or_refused_as_the_reference_does(text: bytes) -> None:
    agree(text)


@pytest.mark.parametrize("text", [
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400",
    b'"\\ud800"', b'"\\udc00x"', b'"\\ud83d\\ude00"', b"\xff", b'"\xed\xa0\x80"',
    b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808",
    b"-9223372036854775809", b"-9999999999999999999", b"1" * 400, b"-" + b"9" * 330,
    b"[" * 256 + b"]" * 256, b"[" * 257 + b"]" * 257, b'["' + b"[" * 300 + b'"]',
    b'{"a":1,"a":2}', b" 1 ", b"1 2", b"", b"[1,]", b"\xef\xbb\xbf1", b"0.1e1", b"-0",
    b"1.7976931348623157e308", b"2.2250738585072014e-308", b"5e-324",
    # more than 256 brackets: read inside orjson's own depth limit, never out of it
    b'{"a":' * 256 + b"1" + b"}" * 256, b'{"a":' * 257 + b"1" + b"}" * 257,
    b"[" * 300 + b"]" * 300 + b"],[0", b"[" * 300 + b"]" * 300 + b"]", b"[[]," * 300 + b"0",
    b"[" * 200 + b"]" * 200 + b" " + b"[" * 100 + b"]" * 100, b"[" + b"[]," * 300 + b"[]]",
    b"[" * 2000 + b"]" * 2000, b" " + b"[" * 256 + b"]" * 256 + b" \n",
])
def test_edge_cases_read_as_the_reference_reads_them(text: bytes) -> None:
    agree(text)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_what_dumps_writes_reads_back_as_the_same_value(value: Any) -> None:
    assert typed(strict_loads(dumps(value))) == typed(value)
