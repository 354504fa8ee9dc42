"""Where a key's records go: Kafka's default partitioner, as every client computes it."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from pipeline.kafka.publisher import murmur2, partition_of


def test_murmur2_is_aiokafkas_for_every_tail_length() -> None:
    keys = [b"", b"a", b"ab", b"abc", b"abcd", "é".encode(), b"\xff\xfe\xfd\x80",
            *(str(uuid.uuid4()).encode()[:n] for n in range(37))]
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF, key


def test_partition_of_is_aiokafkas_default_partitioner() -> None:
    assert [partition_of(k, 4) for k in ("a", "fn", "orders")] == \
        [(aiokafka_murmur2(k.encode()) & 0x7FFFFFFF) % 4 for k in ("a", "fn", "orders")]
