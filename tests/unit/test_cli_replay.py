from __future__ import annotations

from datetime import datetime

import pytest
import typer

from pipeline.cli.replays import bound, finished


def test_bounds_as_the_api_takes_them() -> None:
    assert bound("earliest") == "earliest"
    assert bound("latest") == "latest"
    assert bound("0:120, 1:80") == {"0": 120, "1": 80}
    assert bound("2026-11-01T00:00Z") == "2026-11-01T00:00:00+00:00"
    assert datetime.fromisoformat(bound("2h")).tzinfo is not None


def test_bad_offsets_are_refused() -> None:
    with pytest.raises(typer.BadParameter, match="PARTITION:OFFSET"):
        bound("0:x")


def test_the_bars_stop_once_fed_and_final_or_ended_otherwise() -> None:
    def replay(status: str, final: int | None, invocations: int = 3) -> dict[str, object]:
        return {"status": status, "progress": {"results_final": final,
                                               "invocations": invocations}}

    assert not finished(replay("running", 3))
    assert not finished(replay("done", 2))
    assert finished(replay("done", 3))
    assert finished(replay("cancelled", 0))
    assert finished(replay("failed", None))
