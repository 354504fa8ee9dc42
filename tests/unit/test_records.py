from __future__ import annotations

import base64
import json
import sys
from typing import Any

import pytest

from pipeline.execution import pending
from pipeline.records import (
    Event,
    Invocation,
    Position,
    Result,
    Status,
    dumps,
    encode_payload,
    strict_loads,
)
from pipeline.specs import FunctionSpec, Mode, Subscription, Webhook

from .support import event, function_spec, subscription, webhook


def over_the_wire(record: dict[str, Any]) -> dict[str, Any]:
    """What a consumer of the topic reads back."""
    decoded: dict[str, Any] = json.loads(dumps(record))
    return decoded


def round_trip(ev: Event) -> Event:
    return Event.from_dict(over_the_wire(ev.to_dict()))


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Event: the CloudEvents 1.0 JSON form


def test_event_has_the_cloudevents_required_attributes() -> None:
    record = event(b"x").to_dict()

    assert record["specversion"] == "1.0"
    assert (record["id"], record["source"], record["type"]) == ("ev-1", "orders", "order.created")
    assert record["time"] == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/cloudevents+json", "application/json; charset=utf-8",
     "text/json"],
)
def test_json_data_travels_as_a_json_value(content_type: str) -> None:
    ev = event(b'{"total": 12, "items": ["a", "b"]}', content_type)

    record = over_the_wire(ev.to_dict())

    assert record["data"] == {"total": 12, "items": ["a", "b"]}
    assert "data_base64" not in record
    assert json.loads(round_trip(ev).data) == {"total": 12, "items": ["a", "b"]}


def test_json_string_data_round_trips_as_json_text() -> None:
    ev = event(b'"hello"', "application/json")

    assert round_trip(ev).data == b'"hello"'


def test_text_data_travels_as_a_string() -> None:
    ev = event("héllo wörld".encode(), "text/plain")

    record = over_the_wire(ev.to_dict())

    assert record["data"] == "héllo wörld"
    assert round_trip(ev).data == "héllo wörld".encode()


def test_text_that_looks_like_json_stays_text_without_a_json_content_type() -> None:
    ev = event(b"42", "text/plain")

    assert over_the_wire(ev.to_dict())["data"] == "42"
    assert round_trip(ev).data == b"42"


def test_binary_data_travels_as_data_base64() -> None:
    payload = bytes(range(256))
    ev = event(payload, "application/octet-stream")

    record = over_the_wire(ev.to_dict())

    assert "data" not in record
    assert base64.b64decode(record["data_base64"]) == payload
    assert round_trip(ev).data == payload


def test_empty_data_is_omitted_and_comes_back_empty() -> None:
    ev = event(b"", "application/json")

    record = over_the_wire(ev.to_dict())

    assert "data" not in record
    assert "data_base64" not in record
    assert round_trip(ev).data == b""


@pytest.mark.parametrize("payload", [b'{"a": 1', b"not json", b"\xff\xfe\x00"])
def test_invalid_json_under_a_json_content_type_is_kept_byte_for_byte(payload: bytes) -> None:
    ev = event(payload, "application/json")

    record = over_the_wire(ev.to_dict())

    assert "data" not in record
    assert round_trip(ev).data == payload


def test_optional_attributes_are_omitted_when_unset_and_kept_when_set() -> None:
    bare = event(b"x").to_dict()
    full = Event(id="e", source="s", type="t", subject="order/7", datacontenttype="text/plain")

    assert "subject" not in bare
    assert "datacontenttype" not in bare
    assert round_trip(full).subject == "order/7"
    assert round_trip(full).datacontenttype == "text/plain"


def test_extensions_are_top_level_attributes_and_survive_a_round_trip() -> None:
    ev = Event(id="e", source="s", type="t", data=b"x",
               extensions={"faasflowreplay": "r1", "traceparent": "00-abc-01"})

    record = over_the_wire(ev.to_dict())

    assert record["faasflowreplay"] == "r1"
    assert round_trip(ev).extensions == {"faasflowreplay": "r1", "traceparent": "00-abc-01"}


def test_extensions_read_from_a_foreign_event_are_strings() -> None:
    foreign = {"specversion": "1.0", "id": "e", "source": "s", "type": "t", "retries": 3,
               "data": "x"}

    ev = Event.from_dict(foreign)

    assert ev.extensions == {"retries": "3"}
    assert ev.data == b"x"


def test_event_without_time_gets_one() -> None:
    ev = Event.from_dict({"specversion": "1.0", "id": "e", "source": "s", "type": "t"})

    assert ev.time.endswith("Z")


def test_whole_event_round_trips_to_an_equal_event() -> None:
    ev = Event(id="e", source="s", type="t", data=b'{"a":[1,2]}',
               datacontenttype="application/json", subject="sub",
               extensions={"ext": "v"})

    assert round_trip(ev) == ev


# Findings: JSON payloads that do not survive the trip (these tests fail; see the report).


def test_json_null_data_is_not_turned_into_empty_data() -> None:
    ev = event(b"null", "application/json")

    assert round_trip(ev).data == b"null"


@pytest.mark.parametrize("payload", [b"1e400", b"NaN", b"[Infinity]"])
def test_json_data_on_the_wire_is_strict_json_and_round_trips(payload: bytes) -> None:
    ev = event(payload, "application/json")

    wire = dumps(ev.to_dict())

    json.loads(wire, parse_constant=reject_constant)
    assert Event.from_dict(json.loads(wire)).data == payload


def test_json_with_an_escaped_lone_surrogate_can_be_encoded() -> None:
    ev = event(b'"\\ud800"', "application/json")

    assert round_trip(ev).data == b'"\\ud800"'


# The registry records and invocations


def test_function_spec_round_trips() -> None:
    spec = function_spec("resize", timeout_s=2.5, memory_mb=64, env={"A": "1"}, public=False)

    back = FunctionSpec.from_dict(over_the_wire(spec.to_dict()))

    assert back == spec
    assert back.mode is Mode.COLD


def test_function_spec_defaults_fill_in_missing_optional_fields() -> None:
    record = function_spec().to_dict()
    for optional in ("mode", "env", "public"):
        del record[optional]

    back = FunctionSpec.from_dict(record)

    assert (back.mode, back.env, back.public) == (Mode.COLD, {}, True)


def test_webhook_round_trips() -> None:
    hook = webhook("wh_1", source="payments")

    assert Webhook.from_dict(over_the_wire(hook.to_dict())) == hook


def test_subscription_round_trips() -> None:
    sub = subscription("sub_1", "resize", source="images")

    assert Subscription.from_dict(over_the_wire(sub.to_dict())) == sub


def test_subscription_round_trips_with_its_filter() -> None:
    sub = subscription("sub_1", "resize", source="images", event_filter={
        "type": [{"prefix": "image."}], "data": {"size": [{"numeric": [">", 1024]}]}})

    back = Subscription.from_dict(over_the_wire(sub.to_dict()))

    assert back == sub
    assert back.filter is not None


def test_a_subscription_recorded_before_filters_loads_without_one() -> None:
    old = {"id": "sub_1", "function": "resize", "source": "images",
           "created_at": "2025-01-01T00:00:00Z"}

    assert Subscription.from_dict(old).filter is None


def test_invocation_round_trips_with_its_event() -> None:
    inv = Invocation(id="inv-1", function="resize", event=event(b"\x00\x01", "image/png"),
                     attempt=3, replay_id="r7", queued_at="2025-01-01T00:00:01Z")

    back = Invocation.from_dict(over_the_wire(inv.to_dict()))

    assert back == inv
    assert back.event.data == b"\x00\x01"


def test_where_an_invocation_came_from_reaches_its_result() -> None:
    inv = Invocation(id="inv-1", function="f", event=event(b"{}", "application/json"),
                     source="orders", replay_id="rp_1", event_position=Position(2, 41),
                     callback_url="https://example.org/cb", shadow=True)

    back = Invocation.from_dict(over_the_wire(inv.to_dict()))
    result = Result.from_dict(over_the_wire(pending(back).to_dict()))

    assert back == inv
    assert (result.source, result.replay_id, result.event_position, result.callback_url,
            result.shadow) == ("orders", "rp_1", Position(2, 41), "https://example.org/cb", True)


def test_unset_origin_fields_are_left_out_of_the_record() -> None:
    record = Invocation(id="inv-1", function="f", event=event(b"", None)).to_dict()

    assert not {"event_position", "callback_url", "shadow"} & record.keys()


# Results


def result(**changes: Any) -> Result:
    base = Result(invocation_id="inv-1", event_id="ev-1", function="echo",
                  status=Status.SUCCEEDED, attempt=2, image_digest="sha256:echo",
                  logs="log line\n", exit_code=0, cold_start=False,
                  queued_at="2025-01-01T00:00:00Z", started_at="2025-01-01T00:00:01Z",
                  finished_at="2025-01-01T00:00:02Z", duration_s=1.0)
    return base.with_status(changes.pop("status", base.status), **changes)


def test_result_round_trips_with_its_timings() -> None:
    res = result(output=b"done")

    record = over_the_wire(res.to_dict())

    assert record["timings"] == {"queued_at": "2025-01-01T00:00:00Z",
                                 "started_at": "2025-01-01T00:00:01Z",
                                 "finished_at": "2025-01-01T00:00:02Z", "duration_s": 1.0}
    assert Result.from_dict(record) == res


def test_result_text_output_is_a_string_even_when_it_is_json() -> None:
    res = result(output=b'{"ok": true}')

    record = over_the_wire(res.to_dict())

    assert record["output"] == '{"ok": true}'
    assert Result.from_dict(record).output == b'{"ok": true}'


def test_result_binary_output_is_base64() -> None:
    res = result(output=b"\x89PNG\xff")

    record = over_the_wire(res.to_dict())

    assert "output" not in record
    assert base64.b64decode(record["output_base64"]) == b"\x89PNG\xff"
    assert Result.from_dict(record).output == b"\x89PNG\xff"


def test_result_failure_keeps_error_and_exit_code() -> None:
    res = result(status=Status.FAILED, error="exited with code 3", exit_code=3)

    back = Result.from_dict(over_the_wire(res.to_dict()))

    assert (back.status, back.error, back.exit_code) == (Status.FAILED, "exited with code 3", 3)


def test_with_status_changes_only_what_it_is_given() -> None:
    running = result(status=Status.RUNNING, finished_at=None)

    done = running.with_status(Status.SUCCEEDED, finished_at="later")

    assert (done.status, done.finished_at) == (Status.SUCCEEDED, "later")
    assert done.invocation_id == running.invocation_id
    assert running.status is Status.RUNNING


@pytest.mark.parametrize(
    ("status", "final"),
    [(Status.PENDING, False), (Status.RUNNING, False), (Status.SUCCEEDED, True),
     (Status.FAILED, True), (Status.TIMEOUT, True)],
)
def test_status_final(status: Status, final: bool) -> None:
    assert status.final is final


def test_deep_nesting_is_refused_even_when_the_recursion_limit_is_raised() -> None:
    """py_ecc (under web3) raises the recursion limit; json's C decoder then overflows the
    C stack on a body of brackets and kills the process instead of raising."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        with pytest.raises(ValueError, match="nested deeper"):
            strict_loads(b"[" * 100_000)
        assert encode_payload(b"{\"a\":" * 50_000, "application/json", "data").keys() == {
            "data_base64"}
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize(
    ("payload", "within"),
    [
        (b"[" * 256 + b"]" * 256, True),
        (b"[" * 257 + b"]" * 257, False),
        (b'["' + b"[" * 1000 + b'"]', True),  # brackets inside strings do not nest
        (b'["\\"' + b"[" * 300 + b'"]', True),  # nor after an escaped quote
        (b"[" + b"[]," * 5000 + b"[]]", True),  # many, but shallow
    ],
)
def test_json_depth_is_measured_outside_strings(payload: bytes, within: bool) -> None:
    if within:
        strict_loads(payload)
    else:
        with pytest.raises(ValueError, match="nested deeper"):
            strict_loads(payload)


def test_invocations_spread_over_partitions_unless_ordered() -> None:
    """Keyed by function, one busy function's work would sit in one partition and so on one
    worker however many run; only ordered invocations need that."""
    free = Invocation(id="inv-1", function="f", event=event(b"{}", "application/json"))
    ordered = Invocation(id="inv-2", function="f", event=event(b"{}", "application/json"),
                         ordered=True)
    assert free.queue_key == "inv-1"
    assert ordered.queue_key == "f"
