from __future__ import annotations

import pytest

from pipeline.errors import InvalidRequest
from pipeline.replays.ranges import (
    EARLIEST,
    LATEST,
    At,
    Offsets,
    bound_json,
    parse_bound,
    parse_time,
    resolve,
    times,
)

NOV_1 = parse_time("2026-11-01T00:00Z", "from")
NOV_2 = parse_time("2026-11-02T00:00:00+00:00", "to")
# partition 0 holds offsets 10..99 (0..9 gone with retention), partition 1 holds 0..49
OFFSETS = Offsets(beginnings={0: 10, 1: 0}, ends={0: 100, 1: 50},
                  at={NOV_1: {0: 20, 1: 5}, NOV_2: {0: 60, 1: 50}})


def test_earliest_to_latest_is_everything_the_topic_still_holds() -> None:
    assert resolve(EARLIEST, LATEST, OFFSETS) == {0: (10, 100), 1: (0, 50)}


def test_times_resolve_per_partition_and_a_time_past_the_end_is_the_end() -> None:
    start, end = parse_bound("2026-11-01T00:00Z", "from"), parse_bound("2026-11-02T00:00Z", "to")

    assert times(start, end) == [NOV_1, NOV_2]
    assert resolve(start, end, OFFSETS) == {0: (20, 60), 1: (5, 50)}


def test_rfc3339_times_take_their_offset_into_account() -> None:
    assert parse_time("2026-11-01T01:00+01:00", "from") == NOV_1
    assert parse_time("2026-11-01T00:00:00.000z", "from") == NOV_1


def test_a_time_without_an_offset_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"from: .* no UTC offset"):
        parse_bound("2026-11-01T00:00", "from")


def test_an_offset_map_names_the_partitions_replayed_and_is_held_within_the_partition() -> None:
    start, end = parse_bound({"0": 5, "1": 7}, "from"), parse_bound({"0": 500, "1": 9}, "to")

    assert resolve(start, end, OFFSETS) == {0: (10, 100), 1: (7, 9)}
    assert resolve(parse_bound({"1": 7}, "from"), LATEST, OFFSETS) == {1: (7, 50)}


def test_from_after_to_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="from: lies after to"):
        resolve(At(NOV_2), At(NOV_1), OFFSETS)
    with pytest.raises(InvalidRequest, match="partition 1"):
        resolve(parse_bound({"1": 40}, "from"), parse_bound({"1": 30}, "to"), OFFSETS)


def test_an_empty_range_is_allowed() -> None:
    assert resolve(LATEST, LATEST, OFFSETS) == {0: (100, 100), 1: (50, 50)}


@pytest.mark.parametrize(("raw", "message"), [
    ({"7": 1}, "from.7: the topic has partitions 0-1"),
    ({"x": 1}, "from.x: a partition is a number"),
    ({"0": -1}, "from.0: an offset is a number from 0 on"),
    ({"0": True}, "from.0: an offset"),
    ({}, "from: name at least one partition"),
    ("yesterday", "from: 'yesterday' is not"),
    (5, "from: give 'earliest'"),
])
def test_bad_bounds_are_refused_with_a_pointer(raw: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve(parse_bound(raw, "from"), LATEST, OFFSETS)
    assert caught.value.message.startswith(message)


def test_bounds_are_kept_as_asked() -> None:
    assert bound_json(parse_bound("2026-11-01T01:00+01:00", "from")) == \
        "2026-11-01T00:00:00.000Z"
    assert bound_json(parse_bound({"1": 3, "0": 2}, "from")) == {"0": 2, "1": 3}
    assert bound_json(parse_bound(LATEST, "to")) == LATEST
