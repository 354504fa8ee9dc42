"""Structured CloudEvents from anyone: whatever the body, an event or InvalidRequest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.cloudevents import structured
from pipeline.errors import InvalidRequest

VALID = {"specversion": "1.0", "id": "e-1", "source": "s", "type": "t"}


def test_a_valid_event_with_base64_data_is_read() -> None:
    event = structured(json.dumps({**VALID, "data_base64": "aGk="}).encode())
    assert event.data == b"hi"


@pytest.mark.parametrize(
    "fields",
    [
        {"data_base64": 5},  # found by the fuzz test: a TypeError, answered 500
        {"data_base64": {"a": 1}},
        {"data_base64": "0"},  # not base64: binascii.Error
        {"datacontenttype": 5},
        {"subject": ["a"]},
        {"time": True},
        {"id": {"nested": 1}},
    ],
)
def test_attributes_of_the_wrong_type_are_invalid(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        structured(json.dumps({**VALID, **fields}).encode())


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"specversion": NaN}', b"\xff\xfe", b"[1, 2]"],
)
def test_bodies_that_are_no_json_object_are_invalid(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        structured(body)
