"""Inputs and outputs as a page can show them: any bytes, of any size.

A page shows text (JSON indented), never raw bytes: binary data is shown as the hex of its
first bytes, and text beyond ``SHOWN_CHARS`` is cut, each with a note saying so. What is
shown is escaped by the templates (autoescape), as every other value is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipeline.records import strict_loads

SHOWN_CHARS = 64 * 1024
SHOWN_BINARY = 1024  # bytes of binary data shown as hex


@dataclass(frozen=True, slots=True)
class Shown:
    text: str
    kind: str  # "empty", "json", "text" or "binary"
    size: int  # bytes
    note: str | None = None  # what was left out, if anything


def shown(payload: bytes, limit: int = SHOWN_CHARS) -> Shown:
    size = len(payload)
    if not payload:
        return Shown("", "empty", 0)
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        hexed = payload[:SHOWN_BINARY].hex(" ", -2)
        more = f", the first {SHOWN_BINARY:,} as hex" if size > SHOWN_BINARY else ", as hex"
        return Shown(hexed, "binary", size, f"binary data: {size:,} bytes{more}")
    kind = "text"
    if size <= limit:
        try:
            text = json.dumps(strict_loads(payload), indent=2, ensure_ascii=False)
            kind = "json"
        except (ValueError, RecursionError):
            pass
    if len(text) > limit:
        return Shown(text[:limit], kind, size,
                     f"{size:,} bytes: the first {limit:,} characters are shown")
    return Shown(text, kind, size)
