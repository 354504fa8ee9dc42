"""The records that cross Kafka: frozen dataclasses with an explicit JSON form.

Events follow the CloudEvents 1.0 JSON format, so any CloudEvents tool can read the
event topics. Byte payloads (event data, function output) travel as JSON values when
they are JSON, as strings when they are text, and as ``*_base64`` otherwise.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from pipeline.runtime.shim import MAX_JSON_DEPTH, loads_strict

SPEC_VERSION = "1.0"
JSON_TYPES = ("application/json", "text/json")


def utc_now(after_s: float = 0.0) -> str:
    """Now (or ``after_s`` seconds from now) as an RFC 3339 UTC timestamp."""
    at = datetime.now(UTC) + timedelta(seconds=after_s)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, through orjson (14 times faster than ``json.dumps`` on a batch
    invocation). What orjson does not write (an integer beyond 64 bits, a key that is no
    string) goes through ``json.dumps``, which refuses NaN and Infinity. orjson writes those
    as ``null``: no record holds one, every float in them is read by ``strict_loads`` or
    measured."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode()


def strict_loads(payload: bytes | str) -> Any:
    """JSON that every reader takes for the same value, or ``ValueError``: no NaN or
    Infinity, no number beyond a double's range, no lone surrogate, at most 256 levels deep
    (``json.loads`` recurses in C, guarded only by the interpreter's recursion limit, which
    libraries raise: py_ecc under web3 sets 100,000, and a body of brackets then crashes the
    process). The very rule the function runtimes apply (``pipeline.runtime.shim``).

    orjson reads it 5-10 times faster and refuses the same things, except two it reads
    differently: integers beyond 64 bits (it makes them floats), so text with a run of 19
    digits is read by the reference reader; and nesting deeper than 256 (it goes to 1,024),
    so text with more than 256 brackets is read inside 768 levels of ``[…]``, which orjson
    refuses beyond 256 levels of the text's own (5 times faster than the reference reader
    on a batch of 100 events)."""
    data = payload.encode() if isinstance(payload, str) else payload
    if _LONG_NUMBER.search(data):
        return loads_strict(data.decode("utf-8"))
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return orjson.loads(data)
    try:
        value = orjson.loads(_WRAP_OPEN + data + _WRAP_CLOSE)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise
    for _ in range(_WRAP):  # one element at each level, or the text closed a wrapper early
        if type(value) is not list or len(value) != 1:
            raise ValueError("malformed JSON: a bracket closed that was never opened")
        value = value[0]
    return value


_LONG_NUMBER = re.compile(rb"\d{19}")
_ORJSON_MAX_DEPTH = 1024
_WRAP = _ORJSON_MAX_DEPTH - MAX_JSON_DEPTH
_WRAP_OPEN, _WRAP_CLOSE = b"[" * _WRAP, b"]" * _WRAP


def is_json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or media.endswith("+json")


def encode_payload(payload: bytes, content_type: str | None, key: str) -> dict[str, Any]:
    """``{key: value}`` for JSON or text payloads, ``{key_base64: …}`` for anything else,
    and for JSON or text whose encoding would be longer than base64 (a body of quotes,
    control characters, floats written short): so a payload of n bytes never takes more
    than base64's ⌈n/3⌉·4 bytes in a record, the bound ``pipeline.budget`` relies on."""
    room = -(-len(payload) // 3) * 4 + 2  # base64 and its quotes
    if is_json_type(content_type):
        try:
            value = strict_loads(payload)
        except (ValueError, UnicodeError, RecursionError):  # too deeply nested to parse
            return {f"{key}_base64": _b64(payload)}
        if len(dumps(value)) <= room:
            return {key: value}
        return {f"{key}_base64": _b64(payload)}
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return {f"{key}_base64": _b64(payload)}
    if len(dumps(text)) <= room:
        return {key: text}
    return {f"{key}_base64": _b64(payload)}


def decode_payload(record: Mapping[str, Any], key: str, content_type: str | None) -> bytes:
    if f"{key}_base64" in record:
        return base64.b64decode(record[f"{key}_base64"])
    if key not in record:
        return b""
    value = record[key]
    if isinstance(value, str) and not is_json_type(content_type):
        return value.encode()
    return dumps(value)


def _b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode()


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvents 1.0 event; ``extensions`` holds faasflow's own attributes."""

    id: str
    source: str
    type: str
    data: bytes = b""
    datacontenttype: str | None = None
    subject: str | None = None
    time: str = field(default_factory=utc_now)
    extensions: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
        }
        if self.subject is not None:
            record["subject"] = self.subject
        if self.datacontenttype is not None:
            record["datacontenttype"] = self.datacontenttype
        record.update(self.extensions)
        if self.data:
            record.update(encode_payload(self.data, self.datacontenttype, "data"))
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Event:
        known = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype"}
        content_type = record.get("datacontenttype")
        return cls(
            id=str(record["id"]),
            source=str(record["source"]),
            type=str(record["type"]),
            time=str(record.get("time") or utc_now()),
            subject=record.get("subject"),
            datacontenttype=content_type,
            data=decode_payload(record, "data", content_type),
            extensions={
                k: str(v)
                for k, v in record.items()
                if k not in known and k not in ("data", "data_base64")
            },
        )


class Failure(StrEnum):
    """Why a run did not succeed: what a retry policy chooses from."""

    START = "start"  # its container could not be started (start, /init, a missing secret)
    UNAVAILABLE = "unavailable"  # the Docker Engine did not answer, or stopped the container
    TIMEOUT = "timeout"  # it ran past its timeout and was killed
    ERROR = "error"  # its own failure: an exit code, an exception, out of memory, too much output
    INTERNAL = "internal"  # faasflow itself failed (a bug, reported as such)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record lies in its topic: what an invocation keeps of its event, so the
    event can be read again (``GET /v1/events/{id}``, replay)."""

    partition: int
    offset: int

    def to_dict(self) -> dict[str, int]:
        return {"partition": self.partition, "offset": self.offset}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any] | None) -> Position | None:
        if not record:
            return None
        return cls(partition=int(record["partition"]), offset=int(record["offset"]))


@dataclass(frozen=True, slots=True)
class Invocation:
    """One (event, function) pair to run; ``id`` is derived from the source the event came
    through, the event and the function (see ``ids``)."""

    id: str
    function: str
    event: Event
    source: str = ""  # the faasflow source (event topic) it came through
    attempt: int = 1
    replay_id: str = ""
    queued_at: str = field(default_factory=utc_now)
    redrive: int = 0  # how many times it was redriven from the dead letters
    event_position: Position | None = None  # in the source's event topic
    callback_url: str = ""  # where its final Result is POSTed (async invocations)
    shadow: bool = False  # a shadow replay's run: no callbacks, no sinks
    items: tuple[Item, ...] = ()  # a batch's events (``event`` then holds their list)
    split_on_error: bool = False  # a batch failing whole is halved (``pipeline.batches``)
    ordered: bool = False  # it waits for earlier invocations of its items' subjects

    @property
    def queue_key(self) -> str:
        """Its key in the invocations topic, which picks its partition and so its worker.
        An ordered invocation goes by its function: invocations that share a subject must
        reach one executor in the order they were queued (``pipeline.batches.ordering``).
        Any other goes by its own id, so that every worker of the group shares a busy
        function's work (a function's ``max_concurrency`` is therefore per worker)."""
        return self.function if self.ordered else self.id

    def to_dict(self, event: Any = None) -> dict[str, Any]:
        """``event``: the event's JSON form, when the caller holds it already (a replay
        carries the text it read: ``pipeline.replays.encoding``)."""
        record: dict[str, Any] = {
            "id": self.id,
            "function": self.function,
            "source": self.source,
            "event": self.event.to_dict() if event is None else event,
            "attempt": self.attempt,
            "replay_id": self.replay_id,
            "queued_at": self.queued_at,
            "redrive": self.redrive,
        }
        record.update(_origin_fields(self.event_position, self.callback_url, self.shadow,
                                     self.items))
        for flag in ("split_on_error", "ordered"):
            if getattr(self, flag):
                record[flag] = True
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Invocation:
        return cls(
            id=str(record["id"]),
            function=str(record["function"]),
            event=Event.from_dict(record["event"]),
            source=str(record.get("source", "")),
            attempt=int(record.get("attempt", 1)),
            replay_id=str(record.get("replay_id", "")),
            queued_at=str(record["queued_at"]),
            redrive=int(record.get("redrive", 0)),
            event_position=Position.from_dict(record.get("event_position")),
            callback_url=str(record.get("callback_url", "")),
            shadow=bool(record.get("shadow", False)),
            items=_items(record),
            split_on_error=bool(record.get("split_on_error", False)),
            ordered=bool(record.get("ordered", False)),
        )


def _origin_fields(position: Position | None, callback_url: str, shadow: bool,
                   items: tuple[Item, ...]) -> dict[str, Any]:
    """The optional fields an Invocation hands down to its Result, written only when set."""
    fields: dict[str, Any] = {}
    if position is not None:
        fields["event_position"] = position.to_dict()
    if callback_url:
        fields["callback_url"] = callback_url
    if shadow:
        fields["shadow"] = True
    if items:
        fields["items"] = [i.to_dict() for i in items]
    return fields


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"

    @property
    def final(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.TIMEOUT)


@dataclass(frozen=True, slots=True)
class Item:
    """One event of a batch invocation (``pipeline.batches``): the id it would have had
    unbatched (``invocation_id``, its row in the index) and where it lies; in a Result, its
    own outcome as well."""

    event_id: str
    invocation_id: str
    event_position: Position | None = None
    status: Status = Status.PENDING
    error: str | None = None
    expires_at: str | None = None  # not run after this (its subscription's max_record_age_s)
    subject: str | None = None  # its event's, for per-subject order

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event_id": self.event_id,
                                  "invocation_id": self.invocation_id,
                                  "status": self.status.value}
        if self.event_position is not None:
            record["event_position"] = self.event_position.to_dict()
        for name in ("error", "expires_at", "subject"):
            if getattr(self, name) is not None:
                record[name] = getattr(self, name)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Item:
        return cls(event_id=str(record["event_id"]),
                   invocation_id=str(record["invocation_id"]),
                   event_position=Position.from_dict(record.get("event_position")),
                   status=Status(record.get("status", "pending")), error=record.get("error"),
                   expires_at=record.get("expires_at"), subject=record.get("subject"))


def _items(record: Mapping[str, Any]) -> tuple[Item, ...]:
    return tuple(Item.from_dict(i) for i in record.get("items") or ())


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of an invocation that did not end it (the last run is the Result itself)."""

    attempt: int
    status: Status
    failure: Failure | None
    error: str | None
    started_at: str | None
    finished_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "status": self.status.value,
                "failure": self.failure.value if self.failure else None, "error": self.error,
                "started_at": self.started_at, "finished_at": self.finished_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Attempt:
        failure = record.get("failure")
        return cls(attempt=int(record["attempt"]), status=Status(record["status"]),
                   failure=Failure(failure) if failure else None, error=record.get("error"),
                   started_at=record.get("started_at"), finished_at=record.get("finished_at"))


@dataclass(frozen=True, slots=True)
class Result:
    """The latest state of one invocation, as kept in the compacted results topic.
    ``attempts`` holds the earlier runs that were retried; ``retry_at`` is set while the
    next one waits."""

    invocation_id: str
    event_id: str
    function: str
    status: Status
    attempt: int = 1
    image_digest: str = ""
    output: bytes = b""
    error: str | None = None
    logs: str = ""
    exit_code: int | None = None
    cold_start: bool = True
    init_s: float | None = None
    queued_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    failure: Failure | None = None
    attempts: tuple[Attempt, ...] = ()
    retry_at: str | None = None
    redrive: int = 0
    source: str = ""  # the faasflow source its event came through
    replay_id: str = ""
    event_position: Position | None = None
    callback_url: str = ""
    shadow: bool = False
    items: tuple[Item, ...] = ()  # a batch's events, each with its own outcome
    batch_id: str = ""  # set in one event's view of its batch's Result (never written)

    def with_status(self, status: Status, **changes: Any) -> Result:
        return replace(self, status=status, **changes)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "invocation_id": self.invocation_id,
            "event_id": self.event_id,
            "function": self.function,
            "status": self.status.value,
            "attempt": self.attempt,
            "image_digest": self.image_digest,
            "error": self.error,
            "logs": self.logs,
            "exit_code": self.exit_code,
            "cold_start": self.cold_start,
            "init_s": self.init_s,
            "failure": self.failure.value if self.failure else None,
            "attempts": [a.to_dict() for a in self.attempts],
            "retry_at": self.retry_at,
            "redrive": self.redrive,
            "source": self.source,
            "replay_id": self.replay_id,
            "timings": {
                "queued_at": self.queued_at,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "duration_s": self.duration_s,
            },
        }
        record.update(_origin_fields(self.event_position, self.callback_url, self.shadow,
                                     self.items))
        if self.batch_id:
            record["batch_id"] = self.batch_id
        record.update(encode_payload(self.output, None, "output"))
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Result:
        timings = record.get("timings") or {}
        return cls(
            invocation_id=record["invocation_id"],
            event_id=record["event_id"],
            function=record["function"],
            status=Status(record["status"]),
            attempt=int(record.get("attempt", 1)),
            image_digest=record.get("image_digest", ""),
            output=decode_payload(record, "output", None),
            error=record.get("error"),
            logs=record.get("logs", ""),
            exit_code=record.get("exit_code"),
            cold_start=bool(record.get("cold_start", True)),
            init_s=record.get("init_s"),
            queued_at=timings.get("queued_at", ""),
            started_at=timings.get("started_at"),
            finished_at=timings.get("finished_at"),
            duration_s=timings.get("duration_s"),
            failure=Failure(record["failure"]) if record.get("failure") else None,
            attempts=tuple(Attempt.from_dict(a) for a in record.get("attempts") or ()),
            retry_at=record.get("retry_at"),
            redrive=int(record.get("redrive", 0)),
            source=str(record.get("source", "")),
            replay_id=str(record.get("replay_id", "")),
            event_position=Position.from_dict(record.get("event_position")),
            callback_url=str(record.get("callback_url", "")),
            shadow=bool(record.get("shadow", False)),
            items=_items(record),
            batch_id=str(record.get("batch_id", "")),
        )
