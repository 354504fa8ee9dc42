"""The embedded broker formats its storage with the real Kafka storage tool."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pipeline import broker
from pipeline.cli.processes import kafka_jars
from pipeline.settings import Settings


def test_a_cluster_id_that_starts_with_a_dash_formats(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A random cluster id starts with "-" once in 64 (base64url); the storage tool then
    took it for an option and the broker never started (seen as a flaky test broker)."""
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64url "-A…"
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: dashed)

    broker.prepare(kafka_jars(Settings()), tmp_path, port=19092, controller_port=19093,
                   heap_mb=128)

    meta = (tmp_path / "logs" / "meta.properties").read_text()
    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in meta
