"""Webhook ingest without a broker: verify, publish once, dedupe, build the event."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from connectors.webhooks import VERIFIERS, Check, Scheme
from connectors.webhooks.events import WEBHOOK_EVENT_TYPE, form_as_json, webhook_event
from connectors.webhooks.rotation import configure, current
from pipeline.budget import SizeBudget
from pipeline.errors import (
    BrokerUnavailable,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    VerificationFailed,
)
from pipeline.ids import delivery_event_id
from pipeline.kafka import Written
from pipeline.receiver import Deliveries, WebhookReceiver, delivery_key
from pipeline.records import Event
from pipeline.registry import Registry, encode, record_key
from pipeline.settings import KafkaSettings
from pipeline.specs import Webhook
from pipeline.topics import Topics

from .support import Clock, webhook

NOW = 1_700_000_000.0
TOPICS = Topics(KafkaSettings(topic_prefix="t"))
BUDGET = SizeBudget(payload=4096, output=4096, logs=1024)
BODY = b'{"order": 42}'


class MemoryLog:
    """An in-memory event log: records what is published; can hold or fail publishes."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes | None]] = []
        self.failing: set[str] = set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def publish(self, topic: str, key: str, value: bytes | None) -> Written:
        await self.gate.wait()
        if topic in self.failing:
            raise BrokerUnavailable(f"publishing to {topic}: Kafka did not answer")
        self.records.append((topic, key, value))
        return Written(topic, 0, len(self.records) - 1)

    def on(self, topic: str) -> list[tuple[str, bytes | None]]:
        return [(k, v) for t, k, v in self.records if t == topic]

    def events(self) -> list[Event]:
        return [Event.from_dict(json.loads(v or b""))
                for t, _, v in self.records if t.startswith(TOPICS.events_prefix)]


class Setup:
    def __init__(self, hook: Webhook) -> None:
        self.hook = hook
        self.log = MemoryLog()
        self.clock = Clock(NOW)
        self.registry = Registry()
        self.registry.apply(record_key(hook).encode(), encode(hook))
        self.deliveries = Deliveries(retention_s=3600, clock=self.clock)
        self.receiver = WebhookReceiver(TOPICS, self.log, self.registry, self.deliveries,
                                        BUDGET, clock=self.clock)

    def signed(self, body: bytes = BODY, delivery: str = "msg_1", **headers: str) -> dict[str, Any]:
        secret = current(self.hook)
        assert secret is not None
        signature = VERIFIERS[Scheme(self.hook.scheme)].sign(body, secret, self.clock(), delivery)
        return {"content-type": "application/json", **signature, **headers}


def setup(scheme: Scheme = Scheme.STANDARD, delivery_header: str | None = None) -> Setup:
    return Setup(configure(webhook("wh_1"), scheme.value, None, delivery_header))


async def test_an_unsigned_webhook_publishes_each_delivery_as_a_new_event() -> None:
    s = setup(Scheme.NONE)

    first = await s.receiver.receive("wh_1", {"Content-Type": "text/plain"}, b"hi")
    second = await s.receiver.receive("wh_1", {"Content-Type": "text/plain"}, b"hi")

    assert first.event_id != second.event_id
    assert not first.duplicate
    assert not second.duplicate
    assert [e.data for e in s.log.events()] == [b"hi", b"hi"]
    assert s.log.on(TOPICS.deliveries) == []


async def test_a_signed_delivery_is_published_with_its_delivery_id() -> None:
    s = setup(Scheme.STANDARD)

    receipt = await s.receiver.receive("wh_1", s.signed(), BODY)

    (event,) = s.log.events()
    assert receipt.event_id == event.id == delivery_event_id("wh_1", "msg_1")
    assert (event.source, event.type, event.subject) == ("orders", WEBHOOK_EVENT_TYPE, "hook wh_1")
    assert json.loads(event.data) == json.loads(BODY)  # JSON travels as JSON
    assert event.datacontenttype == "application/json"
    assert event.extensions == {"faasflowwebhook": "wh_1", "faasflowscheme": "standard",
                                "faasflowdelivery": "msg_1",
                                "faasflowregistry": "0"}  # the registry offset it saw
    ((key, value),) = s.log.on(TOPICS.deliveries)
    assert key == "wh_1/msg_1"
    assert json.loads(value or b"") == {"event_id": event.id, "received_at": NOW}


async def test_the_same_delivery_twice_is_one_event_and_the_same_answer() -> None:
    s = setup(Scheme.STANDARD)
    headers = s.signed()

    first = await s.receiver.receive("wh_1", headers, BODY)
    second = await s.receiver.receive("wh_1", headers, BODY)

    assert second.event_id == first.event_id
    assert second.duplicate
    assert len(s.log.events()) == 1


async def test_concurrent_identical_deliveries_publish_once() -> None:
    s = setup(Scheme.GITHUB)
    headers = s.signed()
    s.log.gate.clear()

    racing = [asyncio.create_task(s.receiver.receive("wh_1", headers, BODY)) for _ in range(5)]
    await asyncio.sleep(0.01)
    s.log.gate.set()
    receipts = await asyncio.gather(*racing)

    assert len({r.event_id for r in receipts}) == 1
    assert sum(not r.duplicate for r in receipts) == 1
    assert len(s.log.events()) == 1
    assert len(s.log.on(TOPICS.deliveries)) == 1


async def test_a_forged_delivery_publishes_nothing() -> None:
    s = setup(Scheme.STRIPE)

    with pytest.raises(VerificationFailed) as caught:
        await s.receiver.receive("wh_1", s.signed(), b'{"order": 43}')

    assert caught.value.check == Check.BAD_SIGNATURE
    assert s.log.records == []


async def test_a_replay_after_the_tolerance_is_refused_even_when_seen_before() -> None:
    s = setup(Scheme.STANDARD)
    headers = s.signed()
    await s.receiver.receive("wh_1", headers, BODY)

    s.clock.now += 301
    with pytest.raises(VerificationFailed) as caught:
        await s.receiver.receive("wh_1", headers, BODY)

    assert caught.value.check == Check.STALE_TIMESTAMP
    assert len(s.log.events()) == 1


async def test_a_configured_header_names_deliveries_the_scheme_does_not() -> None:
    s = setup(Scheme.NONE, delivery_header="X-Request-Id")

    first = await s.receiver.receive("wh_1", {"X-Request-ID": "r-1"}, b"a")
    again = await s.receiver.receive("wh_1", {"x-request-id": "r-1"}, b"a")
    other = await s.receiver.receive("wh_1", {"x-request-id": "r-2"}, b"a")

    assert again.event_id == first.event_id != other.event_id
    assert len(s.log.events()) == 2


async def test_a_signed_delivery_id_wins_over_the_configured_header() -> None:
    s = setup(Scheme.STANDARD, delivery_header="x-request-id")

    await s.receiver.receive("wh_1", s.signed(delivery="msg_7", **{"x-request-id": "r"}), BODY)

    assert s.log.events()[0].extensions["faasflowdelivery"] == "msg_7"


async def test_a_delivery_is_not_recorded_when_its_event_was_not_published() -> None:
    s = setup(Scheme.STANDARD)
    headers = s.signed()
    s.log.failing.add(TOPICS.events("orders"))

    with pytest.raises(BrokerUnavailable):
        await s.receiver.receive("wh_1", headers, BODY)
    assert s.log.records == []

    s.log.failing.clear()
    receipt = await s.receiver.receive("wh_1", headers, BODY)
    assert not receipt.duplicate
    assert len(s.log.events()) == 1


async def test_an_unrecorded_delivery_is_still_accepted_and_remembered_here() -> None:
    s = setup(Scheme.STANDARD)
    headers = s.signed()
    s.log.failing.add(TOPICS.deliveries)

    first = await s.receiver.receive("wh_1", headers, BODY)
    second = await s.receiver.receive("wh_1", headers, BODY)

    assert second.event_id == first.event_id
    assert second.duplicate
    assert len(s.log.events()) == 1


async def test_deliveries_recorded_by_another_gateway_are_recognized() -> None:
    s = setup(Scheme.STANDARD)
    headers = s.signed()
    await s.receiver.receive("wh_1", headers, BODY)
    restarted = setup(Scheme.STANDARD)
    restarted.hook, restarted.registry = s.hook, s.registry
    for key, value in s.log.on(TOPICS.deliveries):  # what a CompactedView replays
        restarted.deliveries.apply(key.encode(), value)
    receiver = WebhookReceiver(TOPICS, restarted.log, s.registry, restarted.deliveries,
                               BUDGET, clock=restarted.clock)

    receipt = await receiver.receive("wh_1", headers, BODY)

    assert receipt.duplicate
    assert restarted.log.records == []


async def test_an_unknown_webhook_and_an_overlong_delivery_id() -> None:
    s = setup(Scheme.NONE, delivery_header="x-id")

    with pytest.raises(NotFound):
        await s.receiver.receive("wh_2", {}, b"")
    with pytest.raises(InvalidRequest):
        await s.receiver.receive("wh_1", {"x-id": "x" * 201}, b"")


def test_deliveries_are_forgotten_after_the_retention() -> None:
    clock = Clock(NOW)
    deliveries = Deliveries(retention_s=60, clock=clock)
    deliveries.apply(b"wh_1/a", json.dumps({"event_id": "e", "received_at": NOW - 61}).encode())
    deliveries.add("wh_1/b", NOW)

    assert "wh_1/a" not in deliveries
    assert "wh_1/b" in deliveries
    deliveries.apply(b"wh_1/b", None)
    assert len(deliveries) == 0
    assert delivery_key("wh_1", "b") == "wh_1/b"


# the event a delivery becomes


def event_of(headers: dict[str, str], body: bytes, hook: Webhook | None = None) -> Event:
    return webhook_event(hook or webhook("wh_1"), "ev-1", headers, body, None)


def test_a_form_body_becomes_a_json_object() -> None:
    event = event_of({"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
                     b"a=1&b=x+y&a=2&empty=&c=%C3%A9")

    assert event.datacontenttype == "application/json"
    assert json.loads(event.data) == {"a": ["1", "2"], "b": "x y", "empty": "", "c": "é"}
    assert event.to_dict()["data"] == json.loads(event.data)


@pytest.mark.parametrize("body", [b"no-equals-sign", b"a=%FF", b"\xff=1"])
def test_a_form_body_that_does_not_parse_is_kept_as_it_came(body: bytes) -> None:
    event = event_of({"content-type": "application/x-www-form-urlencoded"}, body)

    assert form_as_json(body) is None
    assert (event.data, event.datacontenttype) == (body, "application/x-www-form-urlencoded")


def test_raw_bodies_stay_raw() -> None:
    binary = bytes(range(256))

    event = event_of({"content-type": "application/octet-stream"}, binary)

    assert event.data == binary
    assert Event.from_dict(json.loads(json.dumps(event.to_dict()))).data == binary


def test_json_too_deeply_nested_to_parse_is_kept_as_bytes() -> None:
    nested = b"[" * 100_000

    event = event_of({"content-type": "application/json"}, nested)

    assert event.to_dict()["data_base64"]
    assert Event.from_dict(event.to_dict()).data == nested


def test_a_github_event_header_becomes_the_event_type() -> None:
    assert event_of({"x-github-event": "pull_request"}, b"{}").type == "com.github.pull_request"
    assert event_of({"x-github-event": "Bad Type!"}, b"{}").type == WEBHOOK_EVENT_TYPE
    assert event_of({}, b"{}").type == WEBHOOK_EVENT_TYPE


def test_no_secret_or_signature_reaches_the_event() -> None:
    hook = configure(webhook("wh_1"), "standard", None, None)
    secret = current(hook)
    assert secret is not None
    headers = VERIFIERS[Scheme.STANDARD].sign(BODY, secret, NOW, "msg_1")

    record = json.dumps(webhook_event(hook, "ev-1", headers, BODY, "msg_1").to_dict())

    assert secret not in record
    assert headers["webhook-signature"] not in record


async def test_an_event_over_the_size_budget_is_refused_and_nothing_is_published() -> None:
    """A body of control characters within the body limit would take six bytes per byte as
    JSON text; stored as base64 it fits. A content type as long as the budget does not."""
    s = setup(Scheme.NONE)

    receipt = await s.receiver.receive("wh_1", {"content-type": "text/plain"}, b"\x01" * 4096)
    [(_, record)] = s.log.on(TOPICS.events("orders"))
    assert receipt.event_id
    assert len(record) <= BUDGET.event_record
    assert "data_base64" in json.loads(record)

    with pytest.raises(PayloadTooLarge):
        await s.receiver.receive(
            "wh_1", {"content-type": "text/plain; x=" + "x" * BUDGET.event_record}, b"")
    assert len(s.log.on(TOPICS.events("orders"))) == 1
