"""``ensure_topics`` against a cluster that names a broker it cannot reach yet: asked again
with fresh metadata, it creates the topics; a cluster that does not answer is
``BrokerUnavailable`` at once. (The admin client stands in for aiokafka's: which broker a
real cluster names is not the test's to choose.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError

from pipeline.errors import BrokerUnavailable
from pipeline.kafka import admin
from pipeline.settings import KafkaSettings
from pipeline.topics import TopicSpec

SPEC = TopicSpec("t.events.orders", 4)


class Cluster:
    """What each new admin client meets: the failures still to come, then success."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.clients = 0
        self.created: list[str] = []

    def client(self, **_: Any) -> Admin:
        self.clients += 1
        return Admin(self)


class Admin:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def start(self) -> None:
        if self.cluster.failures and isinstance(self.cluster.failures[0], KafkaConnectionError):
            raise self.cluster.failures.pop(0)

    async def list_topics(self) -> list[str]:
        return self.cluster.created

    async def create_topics(self, topics: list[Any]) -> None:
        if self.cluster.failures:
            raise self.cluster.failures.pop(0)
        self.cluster.created += [t.name for t in topics]

    async def close(self) -> None:
        pass


@pytest.fixture
def settings() -> KafkaSettings:
    return KafkaSettings(bootstrap="kafka:9092", publish_timeout_s=1.0)


async def test_a_broker_named_but_not_ready_is_asked_again(
        monkeypatch: pytest.MonkeyPatch, settings: KafkaSettings) -> None:
    cluster = Cluster(NodeNotReadyError("node 2"), NodeNotReadyError("node 2"))
    monkeypatch.setattr(admin, "AIOKafkaAdminClient", cluster.client)
    await admin.ensure_topics(settings, [SPEC])
    assert cluster.created == [SPEC.name]
    assert cluster.clients == 3  # each time with new metadata


async def test_a_broker_never_ready_is_broker_unavailable_after_the_publish_timeout(
        monkeypatch: pytest.MonkeyPatch, settings: KafkaSettings) -> None:
    cluster = Cluster(*(NodeNotReadyError("node 2") for _ in range(100)))
    monkeypatch.setattr(admin, "AIOKafkaAdminClient", cluster.client)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="NodeNotReadyError"):
        await admin.ensure_topics(settings, [SPEC])
    assert time.monotonic() - started >= 1.0  # asked again until then
    assert cluster.created == []


async def test_a_cluster_that_does_not_answer_is_broker_unavailable_at_once(
        monkeypatch: pytest.MonkeyPatch, settings: KafkaSettings) -> None:
    cluster = Cluster(KafkaConnectionError("no broker"))
    monkeypatch.setattr(admin, "AIOKafkaAdminClient", cluster.client)
    with pytest.raises(BrokerUnavailable, match="KafkaConnectionError"):
        await admin.ensure_topics(settings, [SPEC])
    assert cluster.clients == 1
