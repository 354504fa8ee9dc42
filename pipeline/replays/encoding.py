"""A replay's records as bytes, made once per event: the event as read from its topic is
decoded once (for the filters and the plan) and carried into each invocation's record as
it was read, rather than decoded and encoded again per invocation.

The carried text is what the executor decodes (``Invocation.from_dict`` →
``Event.from_dict``), and it decodes to the very event that was planned: the same text
under the same strict JSON rule. Three cases take the event's own JSON form instead:
- an event without ``time`` (decoding stamps the time it is decoded: the planned event and
  the executor's would differ);
- a record near the size limit (its own form may be shorter: an invocation record must fit
  within ``message_bytes``, the event record only had to);
- a record with as many brackets as the JSON depth limit allows (nested in an invocation,
  it would be one level deeper).

orjson writes both records: neither holds a float (the event is carried as text), so its
output reads as ``records.dumps``' does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from pipeline.budget import INVOCATION_ENVELOPE
from pipeline.execution import pending
from pipeline.records import Event, Invocation, strict_loads
from pipeline.runtime.shim import MAX_JSON_DEPTH

Encoded = tuple[str, bytes]  # a record's key and value


class Queue(Protocol):
    """Where the starter and the replay runner write (``pipeline.writer.Writer``): each
    call waits for the acknowledgement of every record; ``BrokerUnavailable`` or
    ``PayloadTooLarge`` when it could not."""

    async def write_pending(self, records: Sequence[Encoded]) -> None:
        """Pending Results, keyed by invocation id."""
        ...

    async def enqueue_many(self, records: Sequence[Encoded]) -> None:
        """Invocations, keyed by ``Invocation.queue_key``."""
        ...


@dataclass(frozen=True, slots=True)
class Read:
    """One event as decoded from its record; ``carried``: the record's text, when the
    invocations may carry it (see the module's docstring)."""

    event: Event
    carried: bytes | None


def decode(value: bytes, limit: int) -> Read:
    """``value`` (an event record) decoded; ``ValueError`` (and the errors of
    ``Event.from_dict``) when it is no event. ``limit``: the largest record a topic takes."""
    record: Any = strict_loads(value)
    event = Event.from_dict(record)
    carry = (bool(record.get("time")) and len(value) + INVOCATION_ENVELOPE <= limit
             and value.count(b"[") + value.count(b"{") < MAX_JSON_DEPTH)
    return Read(event, value if carry else None)


def invocation_record(invocation: Invocation, carried: bytes | None) -> bytes:
    """The invocation's record (``Invocation.to_dict``), its event the ``carried`` text."""
    return orjson.dumps(invocation.to_dict(None if carried is None
                                           else orjson.Fragment(carried)))


def pending_record(invocation: Invocation) -> bytes:
    """The invocation's pending Result (``execution.pending``)."""
    return orjson.dumps(pending(invocation).to_dict())
