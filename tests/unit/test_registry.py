from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from pipeline.errors import NotFound
from pipeline.registry import Record, Registry, encode, record_key
from pipeline.specs import Resource

from .support import function_spec, subscription, webhook


def put(registry: Registry, record: Record) -> None:
    registry.apply(record_key(record).encode(), encode(record))


def delete(registry: Registry, key: str) -> None:
    registry.apply(key.encode(), None)


@pytest.fixture
def registry() -> Registry:
    return Registry()


def test_record_keys_are_kind_slash_id() -> None:
    assert record_key(function_spec("resize")) == "function/resize"
    assert record_key(webhook("wh_1")) == "webhook/wh_1"
    assert record_key(subscription("sub_1", "resize")) == "subscription/sub_1"


def test_function_record_is_stored_and_found_by_name(registry: Registry) -> None:
    spec = function_spec("resize", env={"A": "1"})

    put(registry, spec)

    assert registry.function("resize") == spec


def test_newer_function_record_replaces_the_older(registry: Registry) -> None:
    put(registry, function_spec("resize", memory_mb=64))
    put(registry, function_spec("resize", memory_mb=256))

    assert registry.function("resize").memory_mb == 256
    assert list(registry.functions) == ["resize"]


def test_function_tombstone_deletes(registry: Registry) -> None:
    put(registry, function_spec("resize"))

    delete(registry, "function/resize")

    with pytest.raises(NotFound, match="resize"):
        registry.function("resize")


def test_webhook_record_and_tombstone(registry: Registry) -> None:
    put(registry, webhook("wh_1", source="payments"))
    assert registry.webhook("wh_1").source == "payments"

    delete(registry, "webhook/wh_1")

    with pytest.raises(NotFound, match="wh_1"):
        registry.webhook("wh_1")


def test_subscription_record_and_tombstone(registry: Registry) -> None:
    put(registry, subscription("sub_1", "resize"))
    assert registry.subscription("sub_1").function == "resize"

    delete(registry, "subscription/sub_1")

    with pytest.raises(NotFound, match="sub_1"):
        registry.subscription("sub_1")
    assert registry.subscribers("orders") == ()


def test_tombstone_for_an_unknown_record_is_harmless(registry: Registry) -> None:
    delete(registry, "subscription/never-existed")

    assert registry.subscriptions == {}


def test_subscribers_are_ordered_by_function_then_id(registry: Registry) -> None:
    for sub in [subscription("s3", "zip"), subscription("s2", "audit"),
                subscription("s1", "audit"), subscription("s4", "other", source="payments")]:
        put(registry, sub)

    assert [(s.function, s.id) for s in registry.subscribers("orders")] == [
        ("audit", "s1"), ("audit", "s2"), ("zip", "s3"),
    ]


def test_subscribers_of_an_unknown_source_is_empty(registry: Registry) -> None:
    put(registry, subscription("s1", "audit"))

    assert registry.subscribers("nobody-publishes-here") == ()


def test_removed_subscription_is_no_longer_a_subscriber(registry: Registry) -> None:
    put(registry, subscription("s1", "audit"))
    put(registry, subscription("s2", "zip"))
    assert len(registry.subscribers("orders")) == 2  # sorted and kept until a change

    delete(registry, "subscription/s1")

    assert [s.id for s in registry.subscribers("orders")] == ["s2"]


def test_subscription_moved_to_another_source_leaves_the_old_one(registry: Registry) -> None:
    put(registry, subscription("s1", "audit", source="orders"))
    assert len(registry.subscribers("orders")) == len(registry.subscribers("payments")) + 1

    put(registry, subscription("s1", "audit", source="payments"))

    assert registry.subscribers("orders") == ()
    assert [s.source for s in registry.subscribers("payments")] == ["payments"]
    assert registry.sources() == {"payments"}


def test_sources_are_webhook_and_subscription_sources(registry: Registry) -> None:
    put(registry, webhook("wh_1", source="payments"))
    put(registry, subscription("s1", "audit", source="orders"))
    put(registry, subscription("s2", "zip", source="orders"))

    assert registry.sources() == {"payments", "orders"}


def test_source_without_subscriptions_or_webhooks_is_not_a_source(registry: Registry) -> None:
    put(registry, subscription("s1", "audit", source="orders"))
    put(registry, webhook("wh_1", source="payments"))

    delete(registry, "subscription/s1")
    delete(registry, "webhook/wh_1")

    assert registry.sources() == set()


@pytest.mark.parametrize("key", [b"gadget/g1", b"function/", b"no-slash"])
def test_unknown_or_malformed_keys_are_ignored(
    registry: Registry, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[object] = []
    registry.on_change(lambda kind, ident, record: calls.append(kind))

    with caplog.at_level(logging.WARNING, logger="pipeline.registry"):
        registry.apply(key, b'{"name": "x"}')

    assert calls == []
    assert (registry.functions, registry.webhooks, registry.subscriptions) == ({}, {}, {})
    assert "unknown key" in caplog.text


def test_listeners_hear_every_change_including_tombstones(registry: Registry) -> None:
    heard: list[tuple[str, str, object]] = []
    registry.on_change(lambda kind, ident, record: heard.append((kind, ident, record)))
    spec = function_spec("resize")

    put(registry, spec)
    delete(registry, "function/resize")

    assert heard == [("function", "resize", spec), ("function", "resize", None)]


def test_listeners_see_the_registry_already_changed(registry: Registry) -> None:
    seen: list[bool] = []
    registry.on_change(lambda kind, ident, record: seen.append("resize" in registry.functions))

    put(registry, function_spec("resize"))

    assert seen == [True]


def test_a_stamp_carries_the_registry_offset_and_reads_back() -> None:
    from pipeline.records import Event
    from pipeline.registry import position_required, stamp

    event = Event(id="e", source="s", type="t", extensions={"other": "x"})

    stamped = stamp(event, 42)

    assert position_required(stamped) == 42
    assert stamped.extensions["other"] == "x"
    assert position_required(event) == 0
    assert position_required(Event(id="e", source="s", type="t",
                                   extensions={"faasflowregistry": "junk"})) == 0


def test_a_function_keeps_its_command_labels_and_annotations(registry: Registry) -> None:
    spec = replace(function_spec("echo"), command=("cat",), labels={"team": "a"},
                   annotations={"topic": "orders,refunds"})

    put(registry, spec)

    assert registry.function("echo") == spec
    assert registry.function("echo").command == ("cat",)


def test_other_apis_resources_are_kept_by_kind_and_name(registry: Registry) -> None:
    app = Resource(kind="fn.app", name="shop", doc={"id": "01ABC", "config": {"A": "1"}})
    rule = Resource(kind="ow.rule", name="shop", doc={"status": "active"})

    put(registry, app)
    put(registry, rule)
    put(registry, Resource(kind="fn.app", name="billing"))

    assert record_key(app) == "resource/fn.app:shop"
    assert registry.resource("fn.app", "shop") == app
    assert [r.name for r in registry.resources_of("fn.app")] == ["billing", "shop"]
    delete(registry, "resource/fn.app:shop")
    with pytest.raises(NotFound):
        registry.resource("fn.app", "shop")
    assert registry.resource("ow.rule", "shop") == rule


def test_an_invocation_queued_without_the_starter_is_stamped_with_the_gateways_registry(
) -> None:
    """An asynchronous call or a redrive names how far its gateway had read the registry,
    so the executor waits for a function deployed (or fixed) just before; the event keeps
    its own extensions and the invocation its id."""
    from pipeline.records import Event, Invocation
    from pipeline.registry import position_required, stamp, stamp_invocation

    event = stamp(Event(id="e", source="s", type="t", extensions={"other": "x"}), 7)
    invocation = Invocation(id="inv-1", function="echo", event=event, redrive=1)

    restamped = stamp_invocation(invocation, 42)

    assert position_required(restamped.event) == 42
    assert restamped.event.extensions["other"] == "x"
    assert (restamped.id, restamped.redrive, restamped.event.id) == ("inv-1", 1, "e")
    assert position_required(invocation.event) == 7
