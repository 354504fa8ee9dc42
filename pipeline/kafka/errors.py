"""aiokafka's errors, as faasflow's: a record too large for the broker is ``PayloadTooLarge``
(permanent: retrying cannot help), anything else ``BrokerUnavailable``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from pipeline.errors import BrokerUnavailable, PayloadTooLarge

TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


@contextmanager
def broker_errors(what: str) -> Iterator[None]:
    try:
        yield
    except TOO_LARGE as exc:
        raise PayloadTooLarge(f"{what}: the record is larger than the broker accepts "
                              f"({type(exc).__name__})") from exc
    except (KafkaError, TimeoutError, OSError) as exc:
        raise BrokerUnavailable(f"{what}: Kafka did not answer ({type(exc).__name__})") from exc
