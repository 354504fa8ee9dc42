"""Where a machine's platform keeps its state and answers: the rules that both the settings
model and the CLI's quick look-up (``pipeline.cli.connection``) follow, in a module that
imports nothing heavy."""

from __future__ import annotations

import os
from pathlib import Path

TOKEN_FILE = "token"  # the management token, in the state directory


def xdg(var: str, fallback: str) -> Path:
    """faasflow's folder in an XDG base directory: ``$var``, else ``~/fallback``."""
    return Path(os.environ.get(var) or Path.home() / fallback) / "faasflow"


def local_url(host: str, port: int) -> str:
    """The gateway's URL as seen from this machine (one bound to every interface answers on
    the loopback)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{port}"


def stored(path: Path) -> str | None:
    """A secret kept in a file, or None when there is none."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
