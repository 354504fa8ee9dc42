from __future__ import annotations

import re
import uuid

from pipeline.ids import invocation_id, new_event_id, new_resource_id, uuid5
from pipeline.records import Event


def ev(ident: str = "ev-1", source: str = "orders") -> Event:
    return Event(id=ident, source=source, type="t")


def test_invocation_id_is_derived_from_source_event_and_function() -> None:
    assert invocation_id("orders", ev(), "resize") == invocation_id("orders", ev(), "resize")


def test_invocation_id_is_a_uuid() -> None:
    assert uuid.UUID(invocation_id("orders", ev(), "resize")).version == 5


def test_invocation_id_differs_by_function() -> None:
    assert invocation_id("orders", ev(), "resize") != invocation_id("orders", ev(), "thumbnail")


def test_invocation_id_differs_by_event() -> None:
    assert invocation_id("orders", ev("ev-1"), "resize") != invocation_id(
        "orders", ev("ev-2"), "resize")


def test_producers_that_pick_the_same_event_id_get_their_own_invocations() -> None:
    """CloudEvents identity is (source, id): two producers may both send id 1."""
    assert invocation_id("ingest", ev("1", "producer-a"), "f") != invocation_id(
        "ingest", ev("1", "producer-b"), "f")


def test_one_event_through_two_sources_makes_two_invocations() -> None:
    assert invocation_id("a", ev(), "f") != invocation_id("b", ev(), "f")


def test_invocation_id_differs_by_replay() -> None:
    first = invocation_id("orders", ev(), "resize")

    assert invocation_id("orders", ev(), "resize", "replay-1") != first
    assert invocation_id("orders", ev(), "resize", "replay-1") != invocation_id(
        "orders", ev(), "resize", "r2")


def test_invocation_id_parts_cannot_be_shifted_into_each_other() -> None:
    assert invocation_id("orders", ev("ev"), "1resize") != invocation_id(
        "orders", ev("ev1"), "resize")
    assert invocation_id("a", ev(source="bc"), "f") != invocation_id("ab", ev(source="c"), "f")


def test_new_resource_id_has_the_prefix_and_a_random_hex_part() -> None:
    ident = new_resource_id("wh")

    assert re.fullmatch(r"wh_[0-9a-f]{24}", ident)


def test_new_resource_ids_are_unique() -> None:
    assert len({new_resource_id("sub") for _ in range(1000)}) == 1000


def test_new_event_ids_are_unique_uuids() -> None:
    ids = {new_event_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_invocation_ids_stay_what_they_were_before_uuid5_was_made_faster() -> None:
    # ids already in the results topic must not change: computed with uuid.uuid5
    assert invocation_id("orders", ev(source="shop/é"), "resize", "rp_1") == \
        "0bfe565d-80d1-50b7-8900-5bd9abec4701"


def test_uuid5_is_the_standard_librarys() -> None:
    for name in ("", "a", "é\x00ü", "orders\x00src\x00" + "x" * 300):
        assert uuid5(uuid.NAMESPACE_URL, name) == str(uuid.uuid5(uuid.NAMESPACE_URL, name))
