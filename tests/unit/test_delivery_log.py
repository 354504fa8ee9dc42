"""Which records of a source's topic are a webhook's deliveries, and which of them show."""

from __future__ import annotations

from connectors.webhooks.events import webhook_event
from pipeline.delivery_log import Delivery, delivery_of, newest, window
from pipeline.kafka import Record
from pipeline.records import Event, Position
from pipeline.settings import Settings
from pipeline.specs import Webhook

BUDGET = Settings().budget
ORDERS = Webhook(id="wh_orders", name="orders", source="shop")
REFUNDS = Webhook(id="wh_refunds", name="refunds", source="shop")
HOOKS = (ORDERS.id, REFUNDS.id)


def record(event: Event, offset: int, partition: int = 0) -> Record:
    return partition, offset, event.id.encode(), BUDGET.encode_event(event)


def delivery(event_id: str, at: str, offset: int, partition: int = 0) -> Delivery:
    return Delivery(event_id=event_id, received_at=at, type="t", delivery_id=None, size=0,
                    content_type=None, event_position=Position(partition, offset))


def test_a_delivery_is_read_from_its_event_with_its_webhook() -> None:
    event = webhook_event(REFUNDS, "ev-1", {"content-type": "application/json"},
                          b'{"refund": 7}', "msg_1")

    found = delivery_of(record(event, 12, partition=3), HOOKS)

    assert found == (REFUNDS.id, Delivery(
        event_id="ev-1", received_at=event.time, type="dev.faasflow.webhook.received",
        delivery_id="msg_1", size=len(b'{"refund":7}'), content_type="application/json",
        event_position=Position(3, 12)))


def test_other_events_of_the_source_are_not_deliveries() -> None:
    connector = Event(id="ev-2", source="shop", type="dev.faasflow.http.changed",
                      data=b"wh_orders in the data is not a webhook")
    other = webhook_event(Webhook(id="wh_other", name="o", source="shop"), "ev-3", {}, b"x",
                          None)
    undecodable: Record = (0, 5, None, b"not json, yet naming wh_orders")

    assert delivery_of(record(connector, 1), HOOKS) is None
    assert delivery_of(record(other, 2), HOOKS) is None
    assert delivery_of(undecodable, HOOKS) is None
    assert delivery_of((0, 6, None, None), HOOKS) is None
    unnamed = delivery_of(record(webhook_event(ORDERS, "ev-4", {}, b"", None), 7), HOOKS)
    assert unnamed is not None
    assert unnamed[0] == ORDERS.id
    assert (unnamed[1].delivery_id, unnamed[1].size, unnamed[1].content_type) == (None, 0, None)


def test_newest_first_each_event_once_at_most_limit() -> None:
    found = [delivery("a", "2026-12-01T10:00:00.000001Z", 4, partition=1),
             delivery("b", "2026-12-01T10:00:02.000000Z", 1),
             delivery("c", "2026-12-01T10:00:01.000000Z", 9, partition=2),
             delivery("b", "2026-12-01T10:00:02.000000Z", 5, partition=3),  # published twice
             delivery("d", "2026-12-01T10:00:01.000000Z", 2, partition=2)]

    assert [d.event_id for d in newest(found, 10)] == ["b", "c", "d", "a"]
    assert [d.event_id for d in newest(found, 2)] == ["b", "c"]
    assert newest([], 5) == []


def test_the_window_is_the_last_offsets_each_partition_still_holds() -> None:
    assert window({0: 0, 1: 80, 2: 0}, {0: 1000, 1: 100, 2: 0}, 500) == {
        0: (500, 1000), 1: (80, 100), 2: (0, 0)}
