"""Files that other processes read while they are being written."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step: a reader sees the old content or the new, never half.

    The staged copy is named after the writing process, so two writers never share it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        staged.write_text(text)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
