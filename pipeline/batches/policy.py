"""How a subscription batches its events: its settings and their bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InvalidRequest

MAX_BATCH_SIZE = 10_000  # Lambda's bound for Kafka event-source mappings
MAX_WINDOW_MS = 300_000  # Lambda's MaximumBatchingWindowInSeconds: 300
MAX_RECORD_AGE_S = 7 * 24 * 3600  # an event topic's default retention


@dataclass(frozen=True, slots=True)
class Batching:
    """``size`` events at most per invocation, gathered for at most ``window_ms`` from the
    first one (0: what arrives together). An event older than ``max_record_age_s`` (by its
    time) when its batch is about to run is dead-lettered instead (``expired``); a batch
    that fails whole is halved until the bad event is alone (``split_on_error``); events
    with the same subject run one at a time, in topic order (``ordered``).

    Any of these set: the function receives a JSON list of events (a batch, maybe of one).
    None: one invocation per event, as without batching."""

    size: int = 1
    window_ms: int = 0
    max_record_age_s: int | None = None
    split_on_error: bool = False
    ordered: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_BATCH_SIZE:
            raise InvalidRequest(f"batch_size: between 1 and {MAX_BATCH_SIZE}")
        if not 0 <= self.window_ms <= MAX_WINDOW_MS:
            raise InvalidRequest(f"batch_window_ms: between 0 and {MAX_WINDOW_MS}")
        if self.max_record_age_s is not None and not (
                1 <= self.max_record_age_s <= MAX_RECORD_AGE_S):
            raise InvalidRequest(f"max_record_age_s: between 1 and {MAX_RECORD_AGE_S}, "
                                 "or null (no limit)")

    @property
    def batched(self) -> bool:
        return (self.size > 1 or self.window_ms > 0 or self.max_record_age_s is not None
                or self.split_on_error or self.ordered)

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.size, "batch_window_ms": self.window_ms,
                "max_record_age_s": self.max_record_age_s,
                "split_on_error": self.split_on_error, "ordered": self.ordered}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Batching:
        """The settings of a subscription record (or request body): ``InvalidRequest``
        names the field that is out of bounds or of the wrong type."""
        age = record.get("max_record_age_s")
        return cls(size=_whole(record, "batch_size", 1),
                   window_ms=_whole(record, "batch_window_ms", 0),
                   max_record_age_s=None if age is None else _whole(record, "max_record_age_s",
                                                                    0),
                   split_on_error=_flag(record, "split_on_error"),
                   ordered=_flag(record, "ordered"))


def _whole(record: Mapping[str, Any], name: str, default: int) -> int:
    value = record.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: a whole number")
    return value


def _flag(record: Mapping[str, Any], name: str) -> bool:
    value = record.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name}: true or false")
    return value
