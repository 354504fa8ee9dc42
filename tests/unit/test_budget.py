"""The size budget: what the edge accepts can always be written, wrapped and dead-lettered."""

from __future__ import annotations

import json

import pytest

from pipeline.budget import SizeBudget, cut_error, encoded_size
from pipeline.errors import PayloadTooLarge
from pipeline.records import Event, Invocation, encode_payload
from pipeline.settings import Settings

BUDGET = SizeBudget(payload=1024 * 1024, output=1024 * 1024, logs=64 * 1024)

WORST = {  # bodies whose JSON or text encoding is longer than the body itself
    "quotes": (b'"' * 999_800, "text/plain"),
    "control characters": (b"\x01" * 999_800, None),
    "JSON of escaped quotes": (b'["' + b'\\"' * 499_000 + b'"]', "application/json"),
    "JSON of short floats": (b"[" + b"1e15," * 199_000 + b"1]", "application/json"),
    "binary": (bytes(range(256)) * 3900, "application/octet-stream"),
}


@pytest.mark.parametrize("name", sorted(WORST))
def test_no_payload_encodes_larger_than_base64(name: str) -> None:
    payload, content_type = WORST[name]

    encoded = json.dumps(encode_payload(payload, content_type, "data"),
                         separators=(",", ":"), ensure_ascii=False).encode()

    assert len(encoded) <= encoded_size(len(payload)) + len('{"data_base64":""}')


@pytest.mark.parametrize("name", sorted(WORST))
def test_a_body_at_the_limit_fits_an_event_an_invocation_and_every_topic(name: str) -> None:
    payload, content_type = WORST[name]
    event = Event(id="e" * 36, source="s" * 100, type="dev.faasflow.webhook.received",
                  data=payload.ljust(BUDGET.payload, b" ")[:BUDGET.payload],
                  datacontenttype=content_type, subject="n" * 100,
                  extensions={"faasflowwebhook": "wh_" + "0" * 24})

    record = BUDGET.encode_event(event)
    invocation = Invocation(id="i" * 36, function="f" * 100, event=event, source="s" * 100)
    wrapped = json.dumps(invocation.to_dict(), separators=(",", ":"), ensure_ascii=False)

    assert len(record) <= BUDGET.event_record
    assert len(wrapped.encode()) <= BUDGET.invocation_record <= BUDGET.message_bytes


def test_an_event_over_its_budget_is_refused() -> None:
    small = SizeBudget(payload=1024, output=1024, logs=1024)
    event = Event(id="1", source="s", type="t", subject="x" * small.event_record)

    with pytest.raises(PayloadTooLarge, match="over the"):
        small.encode_event(event)


def test_every_kafka_limit_follows_the_one_setting() -> None:
    settings = Settings(max_payload_bytes=4 * 1024 * 1024)

    assert settings.budget.payload == 4 * 1024 * 1024
    assert settings.kafka.message_bytes == settings.budget.message_bytes
    assert settings.kafka.message_bytes > encoded_size(4 * 1024 * 1024)


def test_a_long_error_is_cut() -> None:
    assert len(cut_error("x" * 100_000)) <= 4096
    assert cut_error("short") == "short"
