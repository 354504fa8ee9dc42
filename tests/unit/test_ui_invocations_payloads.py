"""How the invocation page shows inputs and outputs: JSON indented, text as is, binary as
hex, anything large cut with a note."""

from __future__ import annotations

from pipeline.gateway.ui.payloads import SHOWN_BINARY, shown


def test_json_is_indented_and_text_is_kept_as_is() -> None:
    assert shown(b'{"a": [1, "\xc3\xa9"]}').text == shown(b'{"a":[1,"\xc3\xa9"]}').text
    assert shown(b'{"a":1}').text == '{\n  "a": 1\n}'
    assert shown(b'{"a":1}').kind == "json"
    text = shown(b"<script>alert(1)</script>")  # the template escapes it
    assert (text.kind, text.text, text.note) == ("text", "<script>alert(1)</script>", None)
    assert shown(b"").kind == "empty"


def test_binary_is_shown_as_the_hex_of_its_first_bytes() -> None:
    small = shown(b"\xff\x00\x01")
    assert (small.kind, small.text, small.size) == ("binary", "ff00 01", 3)
    assert small.note == "binary data: 3 bytes, as hex"
    large = shown(b"\xff" * 5000)
    assert len(large.text.replace(" ", "")) == 2 * SHOWN_BINARY
    assert large.note == f"binary data: 5,000 bytes, the first {SHOWN_BINARY:,} as hex"


def test_large_text_is_cut_with_a_note() -> None:
    cut = shown(b"x" * 100, limit=10)
    assert (cut.text, cut.kind, cut.size) == ("x" * 10, "text", 100)
    assert cut.note == "100 bytes: the first 10 characters are shown"
    big_json = shown(b"[" + b"1," * 50 + b"1]", limit=20)  # too large to indent: text
    assert big_json.kind == "text"
    assert big_json.note
