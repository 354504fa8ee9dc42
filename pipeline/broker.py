"""Run an Apache Kafka broker in KRaft mode from a folder of Maven jars: a single node, or
one member of a cluster of combined broker+controller nodes.

One piece serves both places a broker runs: ``faasflow up`` runs it on the host
(data in the state directory), and the ``faasflow/kafka`` image runs this same
file as its entrypoint. It therefore uses the standard library only.

    python3 broker.py --jars DIR --data DIR [--port 9092] [--controller-port 9093]
                      [--message-max-bytes N]
                      [--node-id 1 --voters 1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093
                       --cluster-id ID] [--external-port N --external-advertise HOST:PORT]

``--message-max-bytes`` is the largest record batch the broker takes (faasflow passes the
size budget's ``message_bytes``; every topic it creates carries the same limit anyway).

A cluster: every member gets its own ``--node-id``, the same ``--voters`` (the controller
quorum, ``id@host:port``; every member is a voter) and the same ``--cluster-id`` (storage is
formatted with it once; members of different ids refuse each other). The default is the one
local voter of a single node. Replication defaults follow the number of voters
(``replication``). ``--external-port`` adds a second listener, ``EXTERNAL``, for clients
outside the container network, advertised as ``--external-advertise``; the first one stays
``PLAINTEXT`` and carries the brokers' own traffic.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
KAFKA_DEFAULT_MESSAGE_BYTES = 1048588
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class Voter:
    """One member of the controller quorum, ``node_id@host:port``."""

    node_id: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.node_id}@{self.host}:{self.port}"


def parse_voters(text: str) -> tuple[Voter, ...]:
    """``1@kafka-1:9093,2@kafka-2:9093`` as voters; a ValueError says which entry is wrong."""
    voters = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        node_id, at, address = entry.partition("@")
        host, colon, port = address.rpartition(":")
        if not (at and colon and host and node_id.isdigit() and port.isdigit()):
            raise ValueError(f"voter {entry!r} is not id@host:port")
        voters.append(Voter(int(node_id), host, int(port)))
    if not voters:
        raise ValueError("no voters")
    if len({voter.node_id for voter in voters}) != len(voters):
        raise ValueError(f"voters {text!r} name a node id twice")
    return tuple(voters)


def replication(voters: int) -> dict[str, str]:
    """Replication defaults for a cluster of ``voters`` nodes: three copies where there are
    three nodes to hold them, and writes (acks=all) that survive the loss of one."""
    factor = min(voters, 3)
    min_isr = max(factor - 1, 1)
    return {
        "default.replication.factor": str(factor),
        "offsets.topic.replication.factor": str(factor),
        "transaction.state.log.replication.factor": str(factor),
        "min.insync.replicas": str(min_isr),
        "transaction.state.log.min.isr": str(min_isr),
    }


def _joined(voters: Sequence[Voter]) -> str:
    return ",".join(map(str, voters))


def broker_properties(
    data_dir: Path,
    *,
    port: int,
    controller_port: int,
    listen_host: str = "127.0.0.1",
    advertise_host: str = "127.0.0.1",
    message_max_bytes: int = KAFKA_DEFAULT_MESSAGE_BYTES,
    node_id: int = 1,
    voters: Sequence[Voter] = (),
    external_port: int | None = None,
    external_advertise: str | None = None,
) -> str:
    """The server.properties of a combined broker+controller node.

    ``voters`` defaults to this node alone on 127.0.0.1. The node's controller listener
    takes the port of its own voter entry; it listens on 127.0.0.1 while every voter is
    local, on every interface once a voter lives elsewhere (peers connect to it).
    """
    quorum = tuple(voters) or (Voter(node_id, "127.0.0.1", controller_port),)
    me = next((voter for voter in quorum if voter.node_id == node_id), None)
    if me is None:
        raise ValueError(f"node {node_id} is not among the voters {_joined(quorum)}")
    controller_host = (
        "127.0.0.1" if all(voter.host in LOOPBACK for voter in quorum) else "0.0.0.0"
    )
    listeners = {"PLAINTEXT": (f"{listen_host}:{port}", f"{advertise_host}:{port}")}
    if external_port is not None:
        advertised = external_advertise or f"127.0.0.1:{external_port}"
        listeners["EXTERNAL"] = (f"{listen_host}:{external_port}", advertised)
    elif external_advertise is not None:
        raise ValueError("an external advertised address needs an external port")
    bound = [f"{name}://{address}" for name, (address, _) in listeners.items()]
    bound.append(f"CONTROLLER://{controller_host}:{me.port}")
    protocols = [f"{name}:PLAINTEXT" for name in listeners] + ["CONTROLLER:PLAINTEXT"]
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": _joined(quorum),
        "listeners": ",".join(bound),
        "advertised.listeners": ",".join(
            f"{name}://{advertised}" for name, (_, advertised) in listeners.items()
        ),
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": ",".join(protocols),
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.num.partitions": "4",
        **replication(len(quorum)),
        "group.initial.rebalance.delay.ms": "0",
        # Compaction is part of the product's contract: let it run on small topics too.
        "log.cleaner.min.compaction.lag.ms": "0",
        "log.cleaner.backoff.ms": "1000",
        "message.max.bytes": str(message_max_bytes),
        "replica.fetch.max.bytes": str(max(message_max_bytes, 1048576)),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def java_command(
    jars: Path, log4j: Path, heap_mb: int, main_class: str, *args: str
) -> list[str]:
    return [
        "java",
        f"-Xmx{heap_mb}m",
        f"-Xms{min(heap_mb, 256)}m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        f"{jars}/*",
        main_class,
        *args,
    ]


def prepare(
    jars: Path,
    data_dir: Path,
    *,
    port: int,
    controller_port: int,
    listen_host: str = "127.0.0.1",
    advertise_host: str = "127.0.0.1",
    heap_mb: int = 512,
    message_max_bytes: int = KAFKA_DEFAULT_MESSAGE_BYTES,
    node_id: int = 1,
    voters: Sequence[Voter] = (),
    cluster_id: str | None = None,
    external_port: int | None = None,
    external_advertise: str | None = None,
) -> list[str]:
    """Write the config, format the storage once, and return the broker's command line.

    Storage is formatted with ``cluster_id`` (a random one when None: right for a single
    node, never for a cluster, whose members must share it).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    config.write_text(
        broker_properties(
            data_dir,
            port=port,
            controller_port=controller_port,
            listen_host=listen_host,
            advertise_host=advertise_host,
            message_max_bytes=message_max_bytes,
            node_id=node_id,
            voters=voters,
            external_port=external_port,
            external_advertise=external_advertise,
        )
    )
    log4j = data_dir / "log4j.properties"
    if not log4j.exists():
        log4j.write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.BrokerServer=INFO\n"
        )
    if not (data_dir / "logs" / "meta.properties").exists():
        if cluster_id is None:
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        format_cmd = java_command(
            # one argument: a random id starts with "-" once in 64, an option to argparse
            jars, log4j, 256, STORAGE_TOOL, "format", f"--cluster-id={cluster_id}",
            "-c", str(config), "--ignore-formatted",
        )
        subprocess.run(format_cmd, check=True, stdout=subprocess.DEVNULL)
    return java_command(jars, log4j, heap_mb, MAIN_CLASS, str(config))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jars", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "9092")))
    parser.add_argument(
        "--controller-port",
        type=int,
        default=int(os.environ.get("KAFKA_CONTROLLER_PORT", "9093")),
    )
    parser.add_argument("--listen-host", default=os.environ.get("KAFKA_LISTEN_HOST", "127.0.0.1"))
    parser.add_argument(
        "--advertise-host", default=os.environ.get("KAFKA_ADVERTISE_HOST", "127.0.0.1")
    )
    parser.add_argument("--heap-mb", type=int, default=int(os.environ.get("KAFKA_HEAP_MB", "512")))
    parser.add_argument("--message-max-bytes", type=int, default=int(os.environ.get(
        "KAFKA_MESSAGE_MAX_BYTES", KAFKA_DEFAULT_MESSAGE_BYTES)))
    parser.add_argument("--node-id", type=int, default=int(os.environ.get("KAFKA_NODE_ID", "1")))
    parser.add_argument(
        "--voters",
        type=parse_voters,
        default=os.environ.get("KAFKA_VOTERS") or (),
        help="the controller quorum, id@host:port,... (default: this node alone, locally)",
    )
    parser.add_argument("--cluster-id", default=os.environ.get("KAFKA_CLUSTER_ID") or None)
    external_port = os.environ.get("KAFKA_EXTERNAL_PORT")
    parser.add_argument(
        "--external-port", type=int, default=int(external_port) if external_port else None
    )
    parser.add_argument(
        "--external-advertise", default=os.environ.get("KAFKA_EXTERNAL_ADVERTISE") or None,
        help="host:port clients outside reach the external listener at "
        "(default: 127.0.0.1:<external port>)",
    )
    args = parser.parse_args(argv)
    try:
        command = prepare(
            args.jars,
            args.data,
            port=args.port,
            controller_port=args.controller_port,
            listen_host=args.listen_host,
            advertise_host=args.advertise_host,
            heap_mb=args.heap_mb,
            message_max_bytes=args.message_max_bytes,
            node_id=args.node_id,
            voters=args.voters,
            cluster_id=args.cluster_id,
            external_port=args.external_port,
            external_advertise=args.external_advertise,
        )
    except ValueError as error:
        parser.error(str(error))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
