from __future__ import annotations

import pytest

from pipeline.errors import InvalidRequest
from pipeline.settings import KafkaSettings
from pipeline.topics import Topics, check_source


@pytest.fixture
def topics() -> Topics:
    return Topics(KafkaSettings(topic_prefix="t1", partitions=3, event_retention_ms=60_000))


@pytest.mark.parametrize("source", ["orders", "0rders", "a", "my-app.orders_v2", "a" * 100])
def test_check_source_accepts_kafka_safe_names(source: str) -> None:
    assert check_source(source) == source


@pytest.mark.parametrize(
    "source",
    ["Orders", ".orders", "-orders", "_orders", "a" * 101, "orders/eu", "", "ord ers", "ördérs"],
)
def test_check_source_rejects_names_kafka_or_urls_would_mangle(source: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid source"):
        check_source(source)


def test_check_source_rejects_a_trailing_newline() -> None:
    # Finding: ``$`` also matches before a final "\n", so this source is accepted today.
    with pytest.raises(InvalidRequest):
        check_source("orders\n")


def test_topic_names_carry_the_prefix(topics: Topics) -> None:
    assert topics.registry == "t1.registry"
    assert topics.invocations == "t1.invocations"
    assert topics.results == "t1.results"
    assert topics.deadletter == "t1.deadletter"
    assert topics.checkpoints == "t1.checkpoints"
    assert topics.connectors == "t1.connectors"
    assert topics.events("orders") == "t1.events.orders"


def test_events_topic_checks_the_source(topics: Topics) -> None:
    with pytest.raises(InvalidRequest):
        topics.events("Bad/Source")


def test_source_of_an_event_topic(topics: Topics) -> None:
    assert topics.source_of(topics.events("orders")) == "orders"


@pytest.mark.parametrize("topic", ["t1.results", "t2.events.orders", "events.orders"])
def test_source_of_any_other_topic_is_none(topics: Topics, topic: str) -> None:
    assert topics.source_of(topic) is None


def test_core_topics_and_which_are_compacted(topics: Topics) -> None:
    core = {spec.name: spec for spec in topics.core()}

    compacted = {name for name, spec in core.items()
                 if spec.config.get("cleanup.policy") == "compact"}
    assert set(core) == {"t1.registry", "t1.invocations", "t1.results", "t1.deadletter",
                         "t1.checkpoints", "t1.connectors", "t1.deliveries", "t1.replays",
                         "t1.callbacks", "t1.callback-targets"}
    assert compacted == {"t1.registry", "t1.results", "t1.checkpoints", "t1.connectors",
                         "t1.replays", "t1.callbacks", "t1.callback-targets"}


def test_core_partitions(topics: Topics) -> None:
    partitions = {spec.name: spec.partitions for spec in topics.core()}

    assert partitions == {"t1.registry": 1, "t1.invocations": 3, "t1.results": 3,
                          "t1.deadletter": 3, "t1.checkpoints": 1, "t1.connectors": 1,
                          "t1.deliveries": 3, "t1.replays": 1, "t1.callbacks": 3,
                          "t1.callback-targets": 1}


def test_deliveries_are_compacted_and_forgotten_after_their_retention() -> None:
    topics = Topics(KafkaSettings(topic_prefix="t1", delivery_retention_ms=120_000))
    (spec,) = [s for s in topics.core() if s.name == "t1.deliveries"]

    assert spec.config["cleanup.policy"] == "compact,delete"
    assert spec.config["retention.ms"] == "120000"


def test_event_topic_is_deleted_after_the_retention(topics: Topics) -> None:
    spec = topics.event_topic("orders")

    assert spec.name == "t1.events.orders"
    assert spec.partitions == 3
    assert spec.config == {"cleanup.policy": "delete", "retention.ms": "60000",
                           "max.message.bytes": str(KafkaSettings().message_bytes)}
