"""Times on the command line: ``1h``, ``30m``, ``2d`` ago, or an ISO 8601 timestamp."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

_AGO = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment(text: str | None, now: datetime | None = None) -> str | None:
    """``text`` as an ISO 8601 UTC timestamp: a duration means that long ago."""
    if text is None:
        return None
    found = _AGO.fullmatch(text.strip().lower())
    if found:
        ago = timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
        return ((now or datetime.now(UTC)) - ago).isoformat()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (30s, 15m, 1h, 2d, 1w) nor an ISO 8601 time"
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()
