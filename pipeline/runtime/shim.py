"""The Python runtime (functions/runtime/python/runtime.py), loaded as a module here and only
here: the host decodes a warm call's input with the very ``decode_input`` that cold
containers run, so warm and cold cannot disagree. The file stays self-contained (standard
library only), since exec mode runs it in images that know nothing of faasflow (a copy in
the socket root, bind-mounted read-only: see ``pipeline.runtime.containers``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

SHIM_DIR = Path(__file__).resolve().parents[2] / "functions" / "runtime" / "python"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("faasflow_runtime_shim",
                                                  SHIM_DIR / "runtime.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SHIM_DIR / 'runtime.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_shim = _load()

decode_input: Callable[[bytes, str | None], Any] = _shim.decode_input
"""The event as a handler sees it (see the shim and functions/README.md)."""

loads_strict: Callable[[str], Any] = _shim.loads_strict
"""Strict JSON (see the shim): what the host parses JSON payloads with, too."""

MAX_JSON_DEPTH: int = _shim.MAX_JSON_DEPTH

encode_output: Callable[[Any], bytes] = _shim.encode_output
"""The output of a handler's result: what cold mode writes to stdout."""
