"""The replay form's body, the progress bar's share and when a replay's page stops asking."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import InvalidRequest
from pipeline.gateway.routes.replays import ReplayIn
from pipeline.gateway.ui.replays import percent, replay_body, settled, side_by_side


def test_the_form_is_the_apis_body() -> None:
    body = replay_body({"source": " shop ", "from": '{"0": 12}', "to": "latest",
                        "function": "", "compare_with": "", "filter": '{"type": ["a"]}'})
    assert body == {"source": "shop", "from": {"0": 12}, "to": "latest",
                    "filter": {"type": ["a"]}}
    asked = ReplayIn.model_validate(body).ask()
    assert (asked.start, asked.end, asked.function) == ({"0": 12}, "latest", None)
    assert replay_body({"source": "s", "from": "2026-12-01T10:00:00Z", "to": "{nope"}) == {
        "source": "s", "from": "2026-12-01T10:00:00Z", "to": "{nope"}  # the service says
    with pytest.raises(InvalidRequest, match="filter"):
        replay_body({"source": "s", "filter": "[1]"})


def progress(total: int, read: int, made: int, final: int | None) -> dict[str, Any]:
    return {"events_total": total, "events_read": read, "invocations": made,
            "results_final": final}


def test_the_bar_is_half_reading_half_results_becoming_final() -> None:
    assert percent(progress(10, 0, 0, None)) == 0
    assert percent(progress(10, 5, 5, 0)) == 25
    assert percent(progress(10, 10, 10, 5)) == 75
    assert percent(progress(10, 10, 10, 10)) == 100
    assert percent(progress(10, 10, 0, 0)) == 100  # nothing matched: nothing to wait for
    assert percent(progress(0, 0, 0, 0)) == 100


def test_a_replay_settles_when_ended_and_its_results_are_final() -> None:
    assert not settled({"status": "running", "progress": progress(1, 1, 1, 1)})
    assert not settled({"status": "done", "progress": progress(2, 2, 2, 1)})
    assert settled({"status": "done", "progress": progress(2, 2, 2, 2)})
    assert settled({"status": "cancelled", "progress": progress(2, 1, 1, 0)})


def test_differences_are_shown_as_outputs_are() -> None:
    (example,) = side_by_side({"examples": [{"event_id": "e", "output": {"a": 1},
                                             "original_output": "<b>"}]})
    assert example["shown"].text == '{\n  "a": 1\n}'
    assert example["original_shown"].text == "<b>"
    assert side_by_side(None) == []
