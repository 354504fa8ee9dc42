"""The broker runner's server.properties: a single node as before, a cluster member, a second
listener for clients outside the container network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline import broker

DATA = Path("/var/lib/kafka")

# What a single node was configured with before clusters existed, key for key.
SINGLE_NODE = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.quorum.voters": "1@127.0.0.1:9093",
    "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    "advertised.listeners": "PLAINTEXT://127.0.0.1:9092",
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "log.dirs": "/var/lib/kafka/logs",
    "num.partitions": "1",
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "log.cleaner.min.compaction.lag.ms": "0",
    "log.cleaner.backoff.ms": "1000",
    "message.max.bytes": "1048588",
    "replica.fetch.max.bytes": "1048588",
}
THREE = "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"


def properties(**kwargs: Any) -> dict[str, str]:
    text = broker.broker_properties(DATA, **{"port": 9092, "controller_port": 9093, **kwargs})
    lines = text.splitlines()
    parsed = dict(line.split("=", 1) for line in lines)
    assert len(parsed) == len(lines), "a key written twice"
    return parsed


def test_a_single_node_is_configured_as_before() -> None:
    # Two keys are new, written at Kafka's own defaults for one node.
    assert properties() == {
        **SINGLE_NODE, "default.replication.factor": "1", "min.insync.replicas": "1",
    }


def test_three_voters_keep_three_copies_and_write_through_the_loss_of_one() -> None:
    found = properties(node_id=2, voters=broker.parse_voters(THREE), listen_host="0.0.0.0",
                       advertise_host="kafka-2")

    assert found["node.id"] == "2"
    assert found["controller.quorum.voters"] == THREE
    # Peers reach this node's controller, so it listens on every interface.
    assert found["listeners"] == "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"
    assert found["advertised.listeners"] == "PLAINTEXT://kafka-2:9092"
    assert found["inter.broker.listener.name"] == "PLAINTEXT"
    assert {key: found[key] for key in broker.replication(3)} == {
        "default.replication.factor": "3",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "min.insync.replicas": "2",
        "transaction.state.log.min.isr": "2",
    }


@pytest.mark.parametrize(
    ("voters", "factor", "min_isr"), [(1, "1", "1"), (2, "2", "1"), (3, "3", "2"), (5, "3", "2")]
)
def test_replication_follows_the_number_of_voters(voters: int, factor: str, min_isr: str) -> None:
    copies = broker.replication(voters)

    assert copies["default.replication.factor"] == factor
    assert copies["offsets.topic.replication.factor"] == factor
    assert copies["min.insync.replicas"] == min_isr
    assert copies["transaction.state.log.min.isr"] == min_isr


def test_the_controller_listens_on_its_own_voter_port() -> None:
    voters = broker.parse_voters("1@10.0.0.1:9193,2@10.0.0.2:9194")

    found = properties(node_id=2, voters=voters)

    assert found["listeners"].endswith(",CONTROLLER://0.0.0.0:9194")


def test_a_local_quorum_keeps_its_controller_on_loopback() -> None:
    found = properties(voters=broker.parse_voters("1@localhost:9093"))

    assert found["listeners"].endswith(",CONTROLLER://127.0.0.1:9093")


def test_an_external_listener_is_added_beside_the_internal_one() -> None:
    found = properties(listen_host="0.0.0.0", advertise_host="kafka-1", external_port=19092,
                       external_advertise="203.0.113.7:29092")

    assert found["listeners"] == (
        "PLAINTEXT://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092,CONTROLLER://127.0.0.1:9093"
    )
    assert found["advertised.listeners"] == (
        "PLAINTEXT://kafka-1:9092,EXTERNAL://203.0.113.7:29092"
    )
    assert found["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert found["inter.broker.listener.name"] == "PLAINTEXT"


def test_an_external_listener_is_advertised_on_loopback_by_default() -> None:
    found = properties(external_port=19092)

    assert found["advertised.listeners"].endswith(",EXTERNAL://127.0.0.1:19092")


def test_an_external_address_without_a_port_is_refused() -> None:
    with pytest.raises(ValueError, match="external port"):
        properties(external_advertise="127.0.0.1:19092")


def test_a_node_outside_the_quorum_is_refused() -> None:
    with pytest.raises(ValueError, match="node 4 is not among the voters"):
        properties(node_id=4, voters=broker.parse_voters(THREE))


@pytest.mark.parametrize("text", ["", "kafka-1:9093", "1@kafka-1", "x@kafka-1:9093",
                                  "1@kafka-1:9093,1@kafka-2:9093"])
def test_malformed_voters_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        broker.parse_voters(text)


def test_the_environment_configures_a_cluster_member(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def prepare(jars: Path, data_dir: Path, **kwargs: Any) -> list[str]:
        seen.update(kwargs)
        return ["java"]

    def execvp(file: str, args: list[str]) -> None:
        raise SystemExit(0)

    monkeypatch.setattr(broker, "prepare", prepare)
    monkeypatch.setattr(broker.os, "execvp", execvp)
    for name, value in {"KAFKA_NODE_ID": "3", "KAFKA_VOTERS": THREE, "KAFKA_CLUSTER_ID": "c1",
                        "KAFKA_EXTERNAL_PORT": "19093",
                        "KAFKA_EXTERNAL_ADVERTISE": "127.0.0.1:19093"}.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit):
        broker.main(["--jars", "/j", "--data", "/d"])

    assert seen["node_id"] == 3
    assert seen["voters"] == broker.parse_voters(THREE)
    assert seen["cluster_id"] == "c1"
    assert seen["external_port"] == 19093
    assert seen["external_advertise"] == "127.0.0.1:19093"


def test_without_the_environment_a_single_node_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(broker, "prepare", lambda *a, **kwargs: seen.update(kwargs) or ["java"])
    monkeypatch.setattr(broker.os, "execvp", lambda *a: None)
    for name in ("KAFKA_NODE_ID", "KAFKA_VOTERS", "KAFKA_CLUSTER_ID", "KAFKA_EXTERNAL_PORT",
                 "KAFKA_EXTERNAL_ADVERTISE"):
        monkeypatch.delenv(name, raising=False)

    broker.main(["--jars", "/j", "--data", "/d"])

    assert (seen["node_id"], seen["voters"], seen["cluster_id"]) == (1, (), None)
    assert (seen["external_port"], seen["external_advertise"]) == (None, None)
