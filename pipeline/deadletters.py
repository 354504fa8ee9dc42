"""Dead letters: what could not be processed, with everything needed to see why and to redrive.

    faasflow.deadletter   key: the invocation id, or ``topic/partition/offset`` of a raw record

An invocation that failed on its last attempt (``exhausted``), or whose function does not
exist (``unknown_function``), is dead-lettered whole: redrive puts it back on the
invocations topic. A record that cannot even be decoded (``undecodable``) or written
(``too_large``) is dead-lettered by where it was read, with its bytes when they fit, so
the stream moves on and nothing is lost silently. A later record under the same key
supersedes an earlier one: a redrive writes ``redriven_at``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pipeline.records import Attempt, Event, Failure, Invocation, dumps, utc_now

MAX_RAW_BYTES = 64 * 1024  # a raw record's bytes are kept when no larger than this
LOG_TAIL_CHARS = 8 * 1024


class Reason(StrEnum):
    EXHAUSTED = "exhausted"  # the last attempt failed; ``failure`` says how
    EXPIRED = "expired"  # older than its subscription's max_record_age_s: not run
    UNKNOWN_FUNCTION = "unknown_function"
    UNDECODABLE = "undecodable"
    TOO_LARGE = "too_large"
    INTERNAL = "internal"  # faasflow failed on it (a bug): kept, so nothing is lost


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a dead-lettered record was read."""

    topic: str
    partition: int
    offset: int

    @property
    def key(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: str
    reason: Reason
    error: str
    dead_at: str = field(default_factory=utc_now)
    function: str | None = None
    image_digest: str | None = None
    failure: Failure | None = None
    invocation: Invocation | None = None
    event: Event | None = None  # an event that could not be published whole: its attributes
    origin: Origin | None = None
    raw: bytes | None = None  # the record as read, when small enough to keep
    raw_size: int | None = None
    logs_tail: str = ""
    attempts: tuple[Attempt, ...] = ()
    redriven_at: str | None = None

    @property
    def redrivable(self) -> bool:
        return self.invocation is not None and self.redriven_at is None

    def redriven(self) -> DeadLetter:
        return replace(self, redriven_at=utc_now())

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "key": self.key, "reason": self.reason.value, "error": self.error,
            "dead_at": self.dead_at, "function": self.function,
            "image_digest": self.image_digest,
            "failure": self.failure.value if self.failure else None,
            "invocation": self.invocation.to_dict() if self.invocation else None,
            "event": self.event.to_dict() if self.event else None,
            "origin": ({"topic": self.origin.topic, "partition": self.origin.partition,
                        "offset": self.origin.offset} if self.origin else None),
            "raw_size": self.raw_size, "logs_tail": self.logs_tail,
            "attempts": [a.to_dict() for a in self.attempts],
            "redriven_at": self.redriven_at,
        }
        if self.raw is not None:
            record["raw_base64"] = base64.b64encode(self.raw).decode()
        return record

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> DeadLetter:
        origin = record.get("origin")
        failure = record.get("failure")
        return cls(
            key=str(record["key"]), reason=Reason(record["reason"]),
            error=str(record.get("error") or ""), dead_at=str(record["dead_at"]),
            function=record.get("function"), image_digest=record.get("image_digest"),
            failure=Failure(failure) if failure else None,
            invocation=Invocation.from_dict(record["invocation"])
            if record.get("invocation") else None,
            event=Event.from_dict(record["event"]) if record.get("event") else None,
            origin=Origin(str(origin["topic"]), int(origin["partition"]), int(origin["offset"]))
            if origin else None,
            raw=base64.b64decode(record["raw_base64"]) if "raw_base64" in record else None,
            raw_size=record.get("raw_size"), logs_tail=str(record.get("logs_tail") or ""),
            attempts=tuple(Attempt.from_dict(a) for a in record.get("attempts") or ()),
            redriven_at=record.get("redriven_at"),
        )


def of_record(origin: Origin, value: bytes | None, reason: Reason, error: str) -> DeadLetter:
    """A raw record that cannot be processed: kept by where it was read (and its bytes when
    they are small), so that it can be found in its topic for as long as that keeps it."""
    size = len(value) if value is not None else None
    kept = value if value is not None and len(value) <= MAX_RAW_BYTES else None
    return DeadLetter(key=origin.key, reason=reason, error=error, origin=origin, raw=kept,
                      raw_size=size)


def of_event(source: str, event: Event, reason: Reason, error: str) -> DeadLetter:
    """An event a connector could not publish (it is larger than the size budget): its
    attributes, without the data."""
    return DeadLetter(key=f"{source}/{event.source}/{event.id}", reason=reason, error=error,
                      event=replace(event, data=b""), raw_size=len(event.data))


def logs_tail(logs: str) -> str:
    """The last lines of a run's logs, as many as fit in ``LOG_TAIL_CHARS``."""
    if len(logs) <= LOG_TAIL_CHARS:
        return logs
    tail = logs[-LOG_TAIL_CHARS:]
    newline = tail.find("\n")
    return tail[newline + 1:] if 0 <= newline < len(tail) - 1 else tail
