from __future__ import annotations

import pytest

from pipeline.gateway.routes.invoke import media_type


@pytest.mark.parametrize("output", [b'{"ok": true}', b"[1, 2]", b"42", b'"text"'])
def test_json_output_is_served_as_json(output: bytes) -> None:
    assert media_type(output) == "application/json"


@pytest.mark.parametrize("output", [b"hello\n", "grüße".encode(), b""])
def test_text_output_is_served_as_utf8_text(output: bytes) -> None:
    assert media_type(output) == "text/plain; charset=utf-8"


@pytest.mark.parametrize("output", [b"\x89PNG\r\n\x1a\n\xff", b"\xff\xfe\xfd"])
def test_binary_output_is_served_as_octet_stream(output: bytes) -> None:
    assert media_type(output) == "application/octet-stream"


@pytest.mark.parametrize(
    "output",
    [b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000],
)
def test_json_nested_too_deep_to_parse_is_served_as_text(output: bytes) -> None:
    # Finding: guessing the media type ran json.loads on it: a RecursionError, answered 500.
    assert media_type(output) == "text/plain; charset=utf-8"


@pytest.mark.parametrize("output", [b"NaN", b"1e999", b'"\\ud800"', b"[1, Infinity]"])
def test_what_only_lenient_parsers_read_is_not_called_json(output: bytes) -> None:
    assert media_type(output) == "text/plain; charset=utf-8"
