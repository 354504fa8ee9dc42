"""A consumer group member commits, per partition, up to the first record not yet
acknowledged, whatever order the acknowledgements come in."""

from __future__ import annotations

from pipeline.kafka.group import _Acks

P, Q = ("t.events.a", 0), ("t.events.a", 1)


def test_nothing_is_committable_until_the_first_record_is_done() -> None:
    acks = _Acks()
    for offset in (5, 6, 7):
        acks.handed(P, offset)
    acks.done(P, 6)
    acks.done(P, 7)
    assert acks.committable() == {}
    acks.done(P, 5)
    assert acks.committable() == {P: 8}


def test_the_commit_point_stops_at_a_gap_in_the_acknowledgements() -> None:
    acks = _Acks()
    for offset in range(4):
        acks.handed(P, offset)
    acks.done(P, 0)
    acks.done(P, 2)
    assert acks.committable() == {P: 1}
    acks.done(P, 1)
    assert acks.committable() == {P: 3}


def test_what_was_committed_is_not_committed_again() -> None:
    acks = _Acks()
    acks.handed(P, 0)
    acks.handed(Q, 0)
    acks.done(P, 0)
    acks.done(Q, 0)
    acks.committed({P: 1})
    assert acks.committable() == {Q: 1}
    assert acks.committable([P]) == {}


def test_acknowledgements_of_a_dropped_partition_are_ignored() -> None:
    """Work of a partition revoked meanwhile is redone by its new owner, from what was
    committed: a late acknowledgement must not move a commit point."""
    acks = _Acks()
    acks.handed(P, 0)
    acks.drop([P])
    acks.done(P, 0)
    assert acks.committable() == {}
    acks.handed(P, 3)  # assigned again: read from the committed offset
    acks.done(P, 3)
    assert acks.committable() == {P: 4}
