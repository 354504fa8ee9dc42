"""Which records a replay reads: ``from`` and ``to`` resolved to offsets, per partition.

    bound := "earliest" | "latest" | {"<partition>": offset, …} | an RFC 3339 time

A replay reads, in each partition, the records in ``[from, to)``: ``to`` is the first offset
*not* replayed, as Kafka's end offset is. A time resolves, per partition, to the first
offset written at that time or later (Kafka's offsets-for-times lookup), and to the end of
the partition where nothing was written that late. An offset map names the partitions to
replay: a partition it leaves out is not replayed; offsets are held within what the
partition still has (older records may be gone with retention).

Everything is resolved once, when the replay is asked for, so ``latest`` means the end at
that moment and a replay reads a fixed set of records however long it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import InvalidRequest

EARLIEST = "earliest"
LATEST = "latest"


@dataclass(frozen=True, slots=True)
class At:
    """A time, in milliseconds since the epoch (what Kafka's lookup takes)."""

    ms: int


Bound = str | At | Mapping[int, int]  # EARLIEST, LATEST, a time, or offsets by partition


@dataclass(frozen=True, slots=True)
class Offsets:
    """What the topic holds, as read from Kafka when the replay is asked for: each
    partition's first and end offsets, and the offset each asked time resolves to."""

    beginnings: Mapping[int, int]
    ends: Mapping[int, int]
    at: Mapping[int, Mapping[int, int]]  # time (ms) → partition → first offset at or after


Ranges = dict[int, tuple[int, int]]  # partition → [first, end)


def parse_bound(raw: Any, name: str) -> Bound:
    """``raw`` as given in a request; ``InvalidRequest`` names ``name`` (``from``, ``to``)."""
    if raw in (EARLIEST, LATEST):
        return str(raw)
    if isinstance(raw, str):
        return At(parse_time(raw, name))
    if isinstance(raw, Mapping):
        return _offset_map(raw, name)
    raise InvalidRequest(f"{name}: give 'earliest', 'latest', an RFC 3339 time, or "
                         '{"<partition>": offset, …}')


def parse_time(text: str, name: str) -> int:
    """An RFC 3339 time with its offset (``2026-11-01T00:00Z`` too) in ms since the epoch."""
    try:
        at = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidRequest(f"{name}: {text!r} is not 'earliest', 'latest' or an RFC 3339 "
                             "time") from None
    if at.tzinfo is None:
        raise InvalidRequest(f"{name}: {text!r} has no UTC offset (add Z or +hh:mm)")
    return int(at.astimezone(UTC).timestamp() * 1000)


def _offset_map(raw: Mapping[Any, Any], name: str) -> dict[int, int]:
    offsets: dict[int, int] = {}
    for key, value in raw.items():
        try:
            partition = int(key)
        except (TypeError, ValueError):
            raise InvalidRequest(f"{name}.{key}: a partition is a number") from None
        if partition < 0 or isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequest(f"{name}.{key}: an offset is a number from 0 on")
        offsets[partition] = value
    if not offsets:
        raise InvalidRequest(f"{name}: name at least one partition")
    return offsets


def times(*bounds: Bound) -> list[int]:
    """The times among ``bounds``, to look up in Kafka."""
    return [bound.ms for bound in bounds if isinstance(bound, At)]


def resolve(start: Bound, end: Bound, offsets: Offsets) -> Ranges:
    """Per-partition ``[first, end)``; ``InvalidRequest`` when ``from`` lies after ``to``
    or names a partition the topic does not have."""
    if isinstance(start, At) and isinstance(end, At) and start.ms > end.ms:
        raise InvalidRequest("from: lies after to")
    partitions = sorted(offsets.ends)
    for name, bound in (("from", start), ("to", end)):
        if isinstance(bound, Mapping):
            unknown = sorted(set(bound) - set(partitions))
            if unknown:
                raise InvalidRequest(f"{name}.{unknown[0]}: the topic has partitions "
                                     f"{partitions[0]}-{partitions[-1]}")
            partitions = [p for p in partitions if p in bound]
    ranges: Ranges = {}
    for p in partitions:
        first, last = _offset(start, p, offsets), _offset(end, p, offsets)
        if first > last:
            raise InvalidRequest(f"from: lies after to in partition {p} "
                                 f"(offset {first} > {last})")
        ranges[p] = (first, last)
    return ranges


def _offset(bound: Bound, partition: int, offsets: Offsets) -> int:
    low, high = offsets.beginnings[partition], offsets.ends[partition]
    if bound == EARLIEST:
        return low
    if bound == LATEST:
        return high
    if isinstance(bound, At):
        found = offsets.at[bound.ms][partition]
    else:
        assert isinstance(bound, Mapping)
        found = bound[partition]
    return min(max(found, low), high)


def bound_json(bound: Bound) -> Any:
    """``bound`` as the replay record keeps what was asked (a time as RFC 3339 text)."""
    if isinstance(bound, At):
        at = datetime.fromtimestamp(bound.ms / 1000, UTC)
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(bound, Mapping):
        return {str(p): o for p, o in sorted(bound.items())}
    return bound
