"""A replay's records in the compacted replays topic, and what a process knows of them.

Two records per replay, each with one writer, so neither can overwrite the other's news:

    key ``{id}``           the request (the gateway): what to replay, resolved to offset
                           ranges, and ``cancelled_at`` once cancelled
    key ``{id}/progress``  the checkpoint (the worker running it): per partition the next
                           offset to read and the end of what may have been written, the
                           counts, and the status once it ended (done, failed, cancelled)

A replay's status is ``running`` until its progress says how it ended; a cancelled request
whose runner has not stopped yet shows ``cancelled`` already.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pipeline.records import dumps, utc_now
from pipeline.replays.ranges import Ranges

PROGRESS_SUFFIX = "/progress"


class Status(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self is not Status.RUNNING


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """What to replay: ``ranges`` are the resolved ``[first, end)`` offsets per partition;
    ``asked`` keeps ``from`` and ``to`` as given. ``filter`` is the filter's JSON form."""

    id: str
    source: str
    ranges: Ranges
    function: str | None = None
    filter: Mapping[str, Any] | None = None
    compare_with: str | None = None
    asked: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)
    cancelled_at: str | None = None

    @property
    def total(self) -> int:
        """Records in the ranges (some may be gone with retention by the time they are read)."""
        return sum(end - first for first, end in self.ranges.values())

    def cancelled(self) -> ReplayRequest:
        return replace(self, cancelled_at=self.cancelled_at or utc_now())

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "function": self.function,
                "filter": self.filter, "compare_with": self.compare_with,
                "from": self.asked.get("from"), "to": self.asked.get("to"),
                "ranges": {str(p): {"from": first, "to": end}
                           for p, (first, end) in sorted(self.ranges.items())},
                "created_at": self.created_at, "cancelled_at": self.cancelled_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ReplayRequest:
        return cls(id=str(record["id"]), source=str(record["source"]),
                   function=record.get("function"), filter=record.get("filter"),
                   compare_with=record.get("compare_with"),
                   asked={"from": record.get("from"), "to": record.get("to")},
                   ranges={int(p): (int(span["from"]), int(span["to"]))
                           for p, span in record["ranges"].items()},
                   created_at=str(record["created_at"]), cancelled_at=record.get("cancelled_at"))


@dataclass(frozen=True, slots=True)
class Progress:
    """A runner's checkpoint. Every record of partition p before ``next[p]`` is done: its
    invocations were written and acknowledged. Records from ``next[p]`` up to
    ``planned[p]`` may have been written, in part, by a runner that then died."""

    replay_id: str
    next: Mapping[int, int]
    planned: Mapping[int, int]
    read: int = 0  # events read
    matched: int = 0  # events the filter let through
    invoked: int = 0  # invocations written
    status: Status = Status.RUNNING
    error: str | None = None
    worker: str = ""
    updated_at: str = field(default_factory=utc_now)

    @classmethod
    def start(cls, request: ReplayRequest) -> Progress:
        firsts = {p: first for p, (first, _) in request.ranges.items()}
        return cls(replay_id=request.id, next=firsts, planned=firsts)

    def to_dict(self) -> dict[str, Any]:
        return {"replay_id": self.replay_id, "status": self.status.value,
                "next": {str(p): o for p, o in sorted(self.next.items())},
                "planned": {str(p): o for p, o in sorted(self.planned.items())},
                "read": self.read, "matched": self.matched, "invoked": self.invoked,
                "error": self.error, "worker": self.worker, "updated_at": self.updated_at}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Progress:
        return cls(replay_id=str(record["replay_id"]), status=Status(record["status"]),
                   next={int(p): int(o) for p, o in record["next"].items()},
                   planned={int(p): int(o) for p, o in record["planned"].items()},
                   read=int(record["read"]), matched=int(record["matched"]),
                   invoked=int(record["invoked"]), error=record.get("error"),
                   worker=str(record.get("worker", "")), updated_at=str(record["updated_at"]))


def request_key(replay_id: str) -> str:
    return replay_id


def progress_key(replay_id: str) -> str:
    return replay_id + PROGRESS_SUFFIX


def encode(record: ReplayRequest | Progress) -> bytes:
    return dumps(record.to_dict())


class Replays:
    """The replays topic in memory (a ``CompactedView`` feeds ``apply``)."""

    def __init__(self) -> None:
        self.requests: dict[str, ReplayRequest] = {}
        self.progress: dict[str, Progress] = {}

    def apply(self, key: bytes, value: bytes | None) -> None:
        name = key.decode()
        if name.endswith(PROGRESS_SUFFIX):
            ident = name[:-len(PROGRESS_SUFFIX)]
            if value is None:
                self.progress.pop(ident, None)
            else:
                self.progress[ident] = Progress.from_dict(json.loads(value))
        elif value is None:
            self.requests.pop(name, None)
        else:
            self.requests[name] = ReplayRequest.from_dict(json.loads(value))

    def status(self, replay_id: str) -> Status:
        progress = self.progress.get(replay_id)
        if progress is not None and progress.status.ended:
            return progress.status
        request = self.requests.get(replay_id)
        if request is not None and request.cancelled_at is not None:
            return Status.CANCELLED
        return Status.RUNNING

    def unfinished(self) -> list[ReplayRequest]:
        """Requests still to run: neither ended nor cancelled."""
        return [r for r in self.requests.values() if self.status(r.id) is Status.RUNNING]
