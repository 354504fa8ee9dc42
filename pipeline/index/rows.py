"""What the index keeps of a Result (never its output or logs), the queries it answers,
and their opaque cursors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.batches import outcomes
from pipeline.errors import InvalidRequest
from pipeline.records import Position, Result, strict_loads

ERROR_CHARS = 500  # of a Result's error, kept for listings; the Result has all of it
MAX_LIMIT = 1000
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"  # unpadded base64url


@dataclass(frozen=True, slots=True)
class Row:
    """One invocation's latest state as the index holds it, and where its Result lies in
    the results topic (``position``)."""

    invocation_id: str
    event_id: str
    source: str
    function: str
    status: str
    attempt: int
    replay_id: str
    shadow: bool
    failure: str | None
    error: str | None
    queued_at: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    cold_start: bool
    output_sha256: str
    output_size: int
    event_position: Position | None
    position: Position

    @classmethod
    def of(cls, result: Result, position: Position) -> Row:
        return cls(
            invocation_id=result.invocation_id, event_id=result.event_id,
            source=result.source, function=result.function, status=result.status.value,
            attempt=result.attempt, replay_id=result.replay_id, shadow=result.shadow,
            failure=result.failure.value if result.failure else None,
            error=cls.of_error(result.error),
            queued_at=result.queued_at, started_at=result.started_at,
            finished_at=result.finished_at, duration_s=result.duration_s,
            cold_start=result.cold_start,
            output_sha256=hashlib.sha256(result.output).hexdigest(),
            output_size=len(result.output), event_position=result.event_position,
            position=position)

    @classmethod
    def each_of(cls, result: Result, position: Position) -> list[Row]:
        """The Result's row and, for a batch's, a row per event (``batches.outcomes``),
        which shares the batch's output: hashed once."""
        row = cls.of(result, position)
        rows = [row]
        for item in result.items:
            status, error = outcomes.verdict(result, item)
            rows.append(replace(row, invocation_id=item.invocation_id, event_id=item.event_id,
                                status=status.value, error=cls.of_error(error),
                                event_position=item.event_position))
        return rows

    @staticmethod
    def of_error(error: str | None) -> str | None:
        return None if error is None else error[:ERROR_CHARS]

    def to_dict(self) -> dict[str, Any]:
        """The listing form: no output, no logs (``GET /v1/invocations/{id}`` has them)."""
        return {
            "invocation_id": self.invocation_id, "event_id": self.event_id,
            "source": self.source, "function": self.function, "status": self.status,
            "attempt": self.attempt, "replay_id": self.replay_id, "shadow": self.shadow,
            "failure": self.failure, "error": self.error,
            "timings": {"queued_at": self.queued_at, "started_at": self.started_at,
                        "finished_at": self.finished_at, "duration_s": self.duration_s},
            "cold_start": self.cold_start, "output_sha256": self.output_sha256,
            "output_size": self.output_size,
            "event_position": self.event_position.to_dict() if self.event_position else None,
        }


def timestamp(at: datetime) -> str:
    """``at`` in the form Results carry their times in (``records.utc_now``), so that
    comparing the strings compares the times."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last row's queued time and id (pages are newest first)."""

    queued_at: str
    invocation_id: str

    def encode(self) -> str:
        raw = json.dumps([self.queued_at, self.invocation_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            queued_at, ident = strict_loads(raw)
        except (ValueError, TypeError, binascii.Error):
            raise InvalidRequest("cursor: not a cursor this API gave out") from None
        if not isinstance(queued_at, str) or not isinstance(ident, str):
            raise InvalidRequest("cursor: not a cursor this API gave out")
        return cls(queued_at, ident)


@dataclass(frozen=True, slots=True)
class Query:
    """Invocations newest first (by queued time, ties by id), filtered; ``since`` and
    ``until`` bound the queued time (``until`` excluded)."""

    function: str | None = None
    status: str | None = None
    source: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 50
    after: Cursor | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit: between 1 and {MAX_LIMIT}")

    def admits(self, row: Row) -> bool:
        """Whether ``row`` meets the filters (not the cursor): for rows that come one by
        one, as a tail's do."""
        return ((self.function is None or row.function == self.function)
                and (self.status is None or row.status == self.status)
                and (self.source is None or row.source == self.source)
                and (self.since is None or row.queued_at >= self.since)
                and (self.until is None or row.queued_at < self.until))


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"invocations": [r.to_dict() for r in self.rows], "next_cursor": self.next_cursor}


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """A replay's invocations by status and, when compared with function G, how its
    final outputs compare with G's for the same events (see ``queries.replay_summary``)."""

    statuses: dict[str, int]
    final: int
    same: int = 0
    different: int = 0
    failed: int = 0
    missing: int = 0
    examples: list[tuple[str, str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"statuses": self.statuses, "final": self.final, "same": self.same,
                "different": self.different, "failed": self.failed, "missing": self.missing,
                "examples": [list(e) for e in self.examples]}
