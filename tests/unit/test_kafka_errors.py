"""The Kafka adapter's error mapping: a record too large is permanent, not a 503 forever."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)

from pipeline.errors import BrokerUnavailable, PayloadTooLarge
from pipeline.kafka import broker_errors


@pytest.mark.parametrize("error", [MessageSizeTooLargeError, RecordTooLargeError])
def test_a_record_too_large_is_payload_too_large(error: type[Exception]) -> None:
    """Before: every KafkaError became the retryable BrokerUnavailable (a 503 forever)."""
    with pytest.raises(PayloadTooLarge), broker_errors("publishing"):
        raise error()


@pytest.mark.parametrize("error", [KafkaConnectionError, KafkaTimeoutError, TimeoutError,
                                   ConnectionRefusedError])
def test_a_broker_that_does_not_answer_is_unavailable(error: type[Exception]) -> None:
    with pytest.raises(BrokerUnavailable), broker_errors("publishing"):
        raise error()

