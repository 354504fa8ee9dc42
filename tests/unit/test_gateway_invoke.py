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
