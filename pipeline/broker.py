"""Run a single-node Apache Kafka broker in KRaft mode from a folder of Maven jars.

One piece serves both places a broker runs: ``faasflow up`` runs it on the host
(data in the state directory), and the ``faasflow/kafka`` image runs this same
file as its entrypoint. It therefore uses the standard library only.

    python3 broker.py --jars DIR --data DIR [--port 9092] [--controller-port 9093]
                      [--message-max-bytes N]

``--message-max-bytes`` is the largest record batch the broker takes (faasflow passes the
size budget's ``message_bytes``; every topic it creates carries the same limit anyway).
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
KAFKA_DEFAULT_MESSAGE_BYTES = 1048588


def broker_properties(
    data_dir: Path,
    *,
    port: int,
    controller_port: int,
    listen_host: str = "127.0.0.1",
    advertise_host: str = "127.0.0.1",
    message_max_bytes: int = KAFKA_DEFAULT_MESSAGE_BYTES,
) -> str:
    """The server.properties of a combined broker+controller node with one replica."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://{listen_host}:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{advertise_host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
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
) -> list[str]:
    """Write the config, format the storage once, and return the broker's command line."""
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
    args = parser.parse_args(argv)
    command = prepare(
        args.jars,
        args.data,
        port=args.port,
        controller_port=args.controller_port,
        listen_host=args.listen_host,
        advertise_host=args.advertise_host,
        heap_mb=args.heap_mb,
        message_max_bytes=args.message_max_bytes,
    )
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
