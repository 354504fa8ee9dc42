"""One size budget, from the edge to the broker.

``max_payload_bytes`` is the only size a user sets. Everything else is derived from it
(and from the runtime's output and log caps), so that whatever the gateway or a connector
accepts can always be written, wrapped in an invocation and dead-lettered:

    payload (body, event data)  ≤ P
    its encoding in a record    ≤ ⌈P/3⌉·4          JSON or text when that is no longer than
                                                   base64, else base64 (``records``)
    event record                ≤ that + EVENT_ENVELOPE       checked at every edge: 413
    invocation record           ≤ event record + INVOCATION_ENVELOPE
    result record               ≤ encoded output + escaped logs + RESULT_ENVELOPE
    dead letter                 ≤ invocation record + DEAD_LETTER_CONTEXT
    every topic, producer, broker: ``message_bytes`` = the largest of those

A JSON string can take 6 bytes per byte of text (``\\u0001``), which is why logs, kept as
text for people to read, count six times over.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PayloadTooLarge
from pipeline.records import Event, dumps

EVENT_ENVELOPE = 64 * 1024  # attributes and extensions (headers become extensions)
INVOCATION_ENVELOPE = 16 * 1024  # ids, function name, attempt, timestamps, callback
RESULT_ENVELOPE = 64 * 1024  # ids, error text (capped at MAX_ERROR_CHARS), timings, attempts
DEAD_LETTER_CONTEXT = 128 * 1024  # the reason, the last lines of logs, every attempt
MAX_ERROR_CHARS = 4096  # an error message (a function's own text included) is cut here
JSON_ESCAPE_FACTOR = 6


def encoded_size(raw: int) -> int:
    """The most bytes ``raw`` bytes of payload take in a record (base64's size)."""
    return -(-raw // 3) * 4


@dataclass(frozen=True, slots=True)
class SizeBudget:
    payload: int
    output: int
    logs: int

    @property
    def event_record(self) -> int:
        return encoded_size(self.payload) + EVENT_ENVELOPE

    @property
    def invocation_record(self) -> int:
        return self.event_record + INVOCATION_ENVELOPE

    @property
    def result_record(self) -> int:
        return encoded_size(self.output) + JSON_ESCAPE_FACTOR * self.logs + RESULT_ENVELOPE

    @property
    def message_bytes(self) -> int:
        """Every topic's ``max.message.bytes``, every producer's ``max_request_size`` and the
        broker's ``message.max.bytes``."""
        return max(self.invocation_record, self.result_record) + DEAD_LETTER_CONTEXT

    def check_body(self, size: int) -> None:
        if size > self.payload:
            raise PayloadTooLarge(f"request body exceeds {self.payload} bytes")

    def encode_event(self, event: Event) -> bytes:
        """The event's record, or ``PayloadTooLarge`` when it is over its budget: what every
        edge (webhooks, ingest, connectors) publishes."""
        return self.check_event(dumps(event.to_dict()))

    def check_event(self, record: bytes) -> bytes:
        """``record`` (an encoded event) if it fits its budget, else ``PayloadTooLarge``."""
        if len(record) > self.event_record:
            raise PayloadTooLarge(
                f"the event encodes to {len(record)} bytes, over the {self.event_record} "
                f"bytes an event may take (data up to {self.payload} bytes, attributes "
                f"up to {EVENT_ENVELOPE})")
        return record


def cut_error(text: str) -> str:
    """An error message short enough for any record."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 20] + "… [cut]"
