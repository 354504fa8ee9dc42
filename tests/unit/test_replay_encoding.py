"""A replay's records: the event's text carried into an invocation reads back as the very
invocation planned, and the cases where it must not be carried are not."""

from __future__ import annotations

import pytest

from pipeline.execution import pending
from pipeline.records import Event, Invocation, Position, Result, dumps, strict_loads
from pipeline.replays.encoding import decode, invocation_record, pending_record
from pipeline.runtime.shim import MAX_JSON_DEPTH

LIMIT = 1024 * 1024

EVENTS = [  # records as producers write them, not only as faasflow would
    b'{"specversion":"1.0","id":"e1","source":"s","type":"t","time":"2026-01-01T00:00:00Z",'
    b'"datacontenttype":"application/json","data":{"n":1.5,"s":"\xc3\xa9"}}',
    b'{ "id" : "e2", "source":"s", "type":"t", "time":"2026-01-01T00:00:00Z",\n'
    b'  "datacontenttype":"text/plain", "data":"hello", "subject":"x", "traceid": 7 }',
    b'{"id":"e3","source":"s","type":"t","time":"2026-01-01T00:00:00Z",'
    b'"data_base64":"AAEC/w=="}',
    b'{"id":"e4","source":"s","type":"t","time":"2026-01-01T00:00:00Z",'
    b'"datacontenttype":"application/json","data_base64":"eyJhIjpbMSwyXX0="}',
    b'{"id":"e5","source":"s","type":"t","time":"2026-01-01T00:00:00Z","ext":{"a":[1]}}',
]


def plan(event: Event) -> Invocation:
    return Invocation(id=f"inv-{event.id}", function="fn", event=event, source="s",
                      replay_id="rp_1", event_position=Position(2, 7), shadow=True)


@pytest.mark.parametrize("value", EVENTS)
def test_a_carried_event_reads_back_as_the_invocation_planned(value: bytes) -> None:
    read = decode(value, LIMIT)
    invocation = plan(read.event)

    written = invocation_record(invocation, read.carried)

    assert read.carried == value
    assert Invocation.from_dict(strict_loads(written)) == invocation


def test_pending_record_is_the_pending_result() -> None:
    invocation = plan(decode(EVENTS[0], LIMIT).event)

    written = Result.from_dict(strict_loads(pending_record(invocation)))

    assert written == pending(invocation)
    assert strict_loads(pending_record(invocation)) == strict_loads(
        dumps(pending(invocation).to_dict()))


def test_an_event_without_a_time_is_written_in_its_own_form() -> None:
    # decoding stamps the time of decoding: the executor's copy would differ
    value = b'{"id":"e1","source":"s","type":"t","data":"x"}'
    read = decode(value, LIMIT)
    invocation = plan(read.event)

    assert read.carried is None
    assert Invocation.from_dict(strict_loads(invocation_record(invocation, None))) == invocation


def test_a_record_near_the_size_limit_is_not_carried() -> None:
    padding = b" " * 20_000  # what the event's own form would drop
    value = b'{"id":"e1","source":"s","type":"t","time":"2026-01-01T00:00:00Z"' + \
        padding + b"}"

    assert decode(value, LIMIT).carried == value
    assert decode(value, len(value) + 1024).carried is None


def test_a_record_as_deep_as_json_may_be_is_not_carried() -> None:
    # an extension nested to the limit: in an invocation it would be one level too deep,
    # while its own form keeps the extension as text
    nested = b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    value = b'{"id":"e1","source":"s","type":"t","time":"2026-01-01T00:00:00Z","ext":' + \
        nested + b"}"
    read = decode(value, LIMIT)
    invocation = plan(read.event)

    assert read.carried is None
    assert Invocation.from_dict(strict_loads(invocation_record(invocation, None))) == invocation


@pytest.mark.parametrize("value", [b"[1]", b'"text"', b'{"id":"e1"}', b"{", b'{"a":NaN}'])
def test_what_is_no_event_is_refused(value: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError, AttributeError)):
        decode(value, LIMIT)
