"""``faasflow.toml``: the one small file that makes a folder a function.

    name = "resize"            # the function's name: lowercase letters, digits, . _ -
    lang = "python"            # python | node | dockerfile
    mode = "warm"              # cold | warm (unset: the gateway's default, cold)
    main = "handle"            # python/node: the handler's name in handler.py / handler.js
    timeout_s = 30             # unset: the gateway's default, as for the keys below
    memory_mb = 128
    min_warm = 1               # warm mode: containers kept ready
    max_concurrency = 4        # warm mode: calls at once
    idle_timeout_s = 300       # warm mode: an idle container is stopped after this long
    [env]
    GREETING = "Hello"

Unknown keys are errors, so that a typo does not silently deploy a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "faasflow.toml"
LANGS = ("python", "node", "dockerfile")
MODES = ("cold", "warm")
# What the gateway accepts as a name and Docker as an image repository, both.
NAME = re.compile(r"^[a-z0-9]+(?:[._-]+[a-z0-9]+)*$")
IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# The keys sent to the gateway, when the manifest sets them.
DEPLOYED = ("mode", "timeout_s", "memory_mb", "min_warm", "max_concurrency", "idle_timeout_s")


class ManifestError(ValueError):
    """A faasflow.toml that is missing, not TOML, or has a bad key or value."""


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    lang: str
    mode: str | None = None
    main: str = "handle"
    timeout_s: float | None = None
    memory_mb: int | None = None
    min_warm: int | None = None
    max_concurrency: int | None = None
    idle_timeout_s: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def handler_file(self) -> str | None:
        """The file the runtime loads the handler from; None for a Dockerfile function."""
        return {"python": "handler.py", "node": "handler.js"}.get(self.lang)

    def deploy_body(self, image: str) -> dict[str, Any]:
        """The ``PUT /v1/functions/{name}`` body: the image and what the manifest sets."""
        body: dict[str, Any] = {"image": image, "env": dict(self.env)}
        for key in DEPLOYED:
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{folder} has no {MANIFEST}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    return parse_manifest(text, str(path))


def parse_manifest(text: str, where: str = MANIFEST) -> Manifest:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{where}: not valid TOML: {exc}") from None
    known = {f for f in Manifest.__dataclass_fields__}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ManifestError(f"{where}: unknown keys {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(known))})")
    check = _Checker(raw, where)
    name = check.string("name", required=True)
    if not NAME.match(name) or len(name) > 100:
        raise ManifestError(f"{where}: name {name!r} must be lowercase letters and digits, "
                            "separated by . _ or - (at most 100 characters)")
    lang = check.choice("lang", LANGS, required=True)
    main = check.string("main") or "handle"
    if not IDENTIFIER.match(main):
        raise ManifestError(f"{where}: main {main!r} is not a function name")
    return Manifest(
        name=name,
        lang=lang,
        mode=check.choice("mode", MODES),
        main=main,
        timeout_s=check.number("timeout_s", above=0),
        memory_mb=check.integer("memory_mb", least=6),
        min_warm=check.integer("min_warm", least=0),
        max_concurrency=check.integer("max_concurrency", least=1),
        idle_timeout_s=check.number("idle_timeout_s", above=0),
        env=check.env(),
    )


class _Checker:
    """Reads one key each, with its type and bounds, or raises ManifestError naming it."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self.raw = raw
        self.where = where

    def _bad(self, key: str, wanted: str) -> ManifestError:
        return ManifestError(f"{self.where}: {key} must be {wanted}, not {self.raw[key]!r}")

    def string(self, key: str, required: bool = False) -> str:
        if key not in self.raw:
            if required:
                raise ManifestError(f"{self.where}: {key} is required")
            return ""
        value = self.raw[key]
        if not isinstance(value, str) or not value:
            raise self._bad(key, "a non-empty string")
        return value

    def choice(self, key: str, choices: tuple[str, ...], required: bool = False) -> Any:
        value = self.string(key, required)
        if not value:
            return None
        if value not in choices:
            raise self._bad(key, " or ".join(choices))
        return value

    def number(self, key: str, above: float) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= above:
            raise self._bad(key, f"a number above {above:g}")
        return float(value)

    def integer(self, key: str, least: int) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise self._bad(key, f"an integer of at least {least}")
        return value

    def env(self) -> dict[str, str]:
        value = self.raw.get("env", {})
        if not isinstance(value, dict):
            raise self._bad("env", "a table of strings")
        for key, item in value.items():
            if not isinstance(item, str):
                raise ManifestError(f"{self.where}: env.{key} must be a string, not {item!r} "
                                    "(quote it)")
        return dict(value)
