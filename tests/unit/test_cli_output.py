"""How the CLI prints records: a nested value (a subscription's filter) as JSON."""

from __future__ import annotations

import json

import pytest

from pipeline.cli.output import show, table


def test_a_filter_is_shown_as_the_json_it_was_given(capsys: pytest.CaptureFixture[str]) -> None:
    event_filter = {"data": {"paid": [True, None], "tier": [{"prefix": "gold"}]}}

    show({"id": "sub_1", "filter": event_filter}, ("id", "filter"), as_json=False)

    shown = capsys.readouterr().out
    assert json.loads(shown.split("filter: ", 1)[1]) == event_filter


def test_a_listing_shows_the_filter(capsys: pytest.CaptureFixture[str]) -> None:
    table([{"id": "sub_1", "filter": {"paid": [True]}}], ("id", "filter"), "subscriptions")

    assert '{"paid": [true]}' in capsys.readouterr().out


def test_a_flat_mapping_stays_key_value(capsys: pytest.CaptureFixture[str]) -> None:
    show({"env": {"A": "1", "B": "2"}}, ("env",), as_json=False)

    assert capsys.readouterr().out == "env: A=1, B=2\n"
