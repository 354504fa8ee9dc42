"""How a subscription batches its events: its settings and their bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InvalidRequest

MAX_BATCH_SIZE = 10_000  # Lambda's bound for Kafka event-source mappings
MAX_WINDOW_MS = 300_000  # Lambda's MaximumBatchingWindowInSeconds: 300


@dataclass(frozen=True, slots=True)
class Batching:
    """``size`` events at most per invocation, gathered for at most ``window_ms`` from the
    first one (0: what arrives together). ``size`` 1 and no window: one invocation per
    event, as without batching."""

    size: int = 1
    window_ms: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_BATCH_SIZE:
            raise InvalidRequest(f"batch_size: between 1 and {MAX_BATCH_SIZE}")
        if not 0 <= self.window_ms <= MAX_WINDOW_MS:
            raise InvalidRequest(f"batch_window_ms: between 0 and {MAX_WINDOW_MS}")

    @property
    def batched(self) -> bool:
        return self.size > 1 or self.window_ms > 0

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.size, "batch_window_ms": self.window_ms}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Batching:
        """The settings of a subscription record (or request body): ``InvalidRequest``
        names the field that is out of bounds or not a whole number."""
        return cls(size=_whole(record, "batch_size", 1),
                   window_ms=_whole(record, "batch_window_ms", 0))


def _whole(record: Mapping[str, Any], name: str, default: int) -> int:
    value = record.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: a whole number")
    return value
