from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer

from pipeline.cli.times import moment

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("1h", "2026-12-01T11:00:00+00:00"),
    ("30m", "2026-12-01T11:30:00+00:00"),
    ("2d", "2026-11-29T12:00:00+00:00"),
    ("2026-11-30T08:00:00", "2026-11-30T08:00:00+00:00"),
    ("2026-11-30T08:00:00+01:00", "2026-11-30T08:00:00+01:00"),
])
def test_durations_are_ago_and_times_are_utc_unless_zoned(text: str, expected: str) -> None:
    assert moment(text, NOW) == expected


def test_anything_else_is_a_clear_error() -> None:
    with pytest.raises(typer.BadParameter, match="neither a duration"):
        moment("yesterday", NOW)
