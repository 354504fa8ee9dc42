"""The Kafka adapter: only this package (and the Faust worker) import the Kafka client, and
aiokafka's errors are mapped here (``errors``), so callers see faasflow's error tree.

    publisher   an idempotent producer whose writes return once acknowledged (acks=all)
    admin       waiting for the cluster, topics, a consumer group's offsets, offsets by time
    reading     a bounded scan of a topic, outside any group
    views       topics kept in memory as they grow, with a read barrier and a health
"""

from pipeline.kafka.admin import (
    GroupProbe,
    ensure_topics,
    offsets_at,
    topic_partitions,
    wait_for_broker,
)
from pipeline.kafka.errors import broker_errors
from pipeline.kafka.publisher import Headers, Publisher, Written, partition_of
from pipeline.kafka.reading import Record, consumer, read_from, scan
from pipeline.kafka.views import Apply, CompactedView, TailView

__all__ = [
    "Apply", "CompactedView", "GroupProbe", "Headers", "Publisher", "Record", "TailView",
    "Written", "broker_errors", "consumer", "ensure_topics", "offsets_at", "partition_of",
    "read_from", "scan", "topic_partitions", "wait_for_broker",
]
