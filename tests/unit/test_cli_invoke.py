"""How ``faasflow fn invoke`` prints a function's output."""

from __future__ import annotations

import pytest

from pipeline.cli.resources import printable_output


@pytest.mark.parametrize("terminal", [True, False])
def test_text_output_ends_with_a_newline(terminal: bool) -> None:
    assert printable_output(b'{"message":"Hello, Ada!"}', terminal) == (
        b'{"message":"Hello, Ada!"}\n')
    assert printable_output("é".encode(), terminal) == "é\n".encode()
    assert printable_output(b"done\n", terminal) == b"done\n"
    assert printable_output(b"", terminal) == b""


def test_binary_output_to_a_pipe_stays_byte_for_byte() -> None:
    assert printable_output(b"\x89PNG\xff", terminal=False) == b"\x89PNG\xff"
    assert printable_output(b"\x89PNG\xff", terminal=True) == b"\x89PNG\xff\n"
