"""The chain-tracking core: confirmations, pending events, reorgs, backfill, resume."""

from __future__ import annotations

import json

import pytest

from connectors.ethereum.chain import Block, Chain, Change, Status
from connectors.ethereum.events import RETRACTS, STATUS, event_id, from_event, to_event
from tests.unit.ethereum_support import CONTRACT, MemoryChain

F, P, R = Status.FINAL, Status.PENDING, Status.RETRACTED


def summary(changes: list[Change]) -> list[tuple[str, int, int | None]]:
    """(status, block number, log index or None) of each change, in order."""
    return [(c.status.value[0], c.block.number, None if c.log is None else c.log.index)
            for c in changes]


def feed(chain: Chain, blocks: list[Block]) -> list[Change]:
    changes = []
    for block in blocks:
        changes.extend(chain.apply([block]))
    return changes


def roundtrip(chain: Chain) -> Chain:
    record = json.loads(json.dumps(chain.checkpoint()))
    return Chain.restore(record, chain.confirmations, chain.emit_pending, chain.history)


def test_blocks_become_final_confirmations_deep_logs_before_their_block() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=2)
    changes = feed(chain, world.mine(2, logs=2))
    assert changes == []
    changes = feed(chain, world.mine(1))
    assert summary(changes) == [("f", 1, 0), ("f", 1, 1), ("f", 1, None)]
    assert chain.final is not None
    assert chain.final.number == 1
    assert summary(feed(chain, world.mine(2))) == [("f", 2, 0), ("f", 2, 1), ("f", 2, None),
                                                   ("f", 3, None)]


def test_zero_confirmations_is_final_at_once() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=0)
    assert summary(feed(chain, world.mine(2, logs=1))) == [("f", 1, 0), ("f", 1, None),
                                                          ("f", 2, 0), ("f", 2, None)]


def test_pending_only_when_asked_then_final() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=1, emit_pending=True)
    assert summary(feed(chain, world.mine(1, logs=1))) == [("p", 1, 0), ("p", 1, None)]
    assert summary(feed(chain, world.mine(1))) == [("f", 1, 0), ("f", 1, None), ("p", 2, None)]
    quiet = Chain(confirmations=1)
    assert feed(quiet, world.blocks[1:2]) == []


def test_a_backfilled_range_is_final_where_deep_enough_and_pending_above() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=2, emit_pending=True)
    changes = chain.apply(world.mine(5))
    assert summary(changes) == [("f", 1, None), ("f", 2, None), ("f", 3, None),
                                ("p", 4, None), ("p", 5, None)]


def test_shallow_reorg_inside_the_window_publishes_nothing_wrong() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=3)
    feed(chain, world.mine(6, logs=1))  # final up to 3
    new = world.reorg(2, logs=1)  # blocks 5 and 6 replaced, never final
    changes = chain.apply(new)
    assert changes == []
    after = feed(chain, world.mine(2))
    assert summary(after) == [("f", 4, 0), ("f", 4, None), ("f", 5, 0), ("f", 5, None)]
    assert after[-1].block.hash == new[0].hash  # the new chain's block 5, not the old one


def test_shallow_reorg_retracts_only_pending_events() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=3, emit_pending=True)
    feed(chain, world.mine(5, logs=1))
    old_five = world.blocks[5]
    changes = chain.apply(world.reorg(1, logs=0))
    assert summary(changes) == [("r", 5, 0), ("r", 5, None), ("p", 5, None)]
    assert {c.retracted for c in changes if c.status is R} == {P}
    assert changes[0].block.hash == old_five.hash


def test_deep_reorg_retracts_final_blocks_newest_first_then_the_new_chain() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=2)
    feed(chain, world.mine(10, logs=1))  # final up to 8
    new = world.reorg(5)  # 6..10 replaced: 6, 7, 8 were final
    changes = chain.apply(new)
    assert summary(changes) == [
        ("r", 8, 0), ("r", 8, None), ("r", 7, 0), ("r", 7, None), ("r", 6, 0), ("r", 6, None),
        ("f", 6, None), ("f", 7, None), ("f", 8, None),
    ]
    assert {c.retracted for c in changes if c.status is R} == {F}
    assert [c.block.hash for c in changes if c.status is F] == [b.hash for b in new[:3]]


def test_a_reorg_to_a_shorter_chain() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=1)
    feed(chain, world.mine(5))  # final up to 4
    new = world.reorg(3, new_length=1)  # 3..5 replaced by one block 3
    changes = chain.apply(new)
    assert summary(changes) == [("r", 4, None), ("r", 3, None)]
    assert chain.tip == new[0]


def test_segment_that_does_not_attach_or_leaves_a_gap_is_refused() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=1)
    feed(chain, world.mine(3))
    world.reorg(2)
    with pytest.raises(ValueError, match="does not attach"):
        chain.apply([world.blocks[3]])
    with pytest.raises(ValueError, match="gap"):
        chain.apply(world.mine(2)[1:])
    assert chain.tip is not None
    assert chain.tip.number == 3


def test_resume_from_a_checkpoint_has_no_gap_and_no_duplicate() -> None:
    world = MemoryChain()
    blocks = world.mine(12, logs=2)
    straight = Chain(confirmations=3, emit_pending=True)
    expected = feed(straight, blocks)
    first = Chain(confirmations=3, emit_pending=True)
    before = feed(first, blocks[:7])
    resumed = roundtrip(first)
    assert resumed.next_number() == 8
    # pending blocks: their logs must be fetched again before they can become final
    assert [b.hash for b in resumed.unknown_logs()] == [b.hash for b in blocks[4:7]]
    for block in blocks[4:7]:
        resumed.hydrate(block, block.logs)
    assert resumed.unknown_logs() == []
    after = feed(resumed, blocks[7:])
    assert summary(before + after) == summary(expected)
    assert [c.log for c in before + after] == [c.log for c in expected]


def test_unpublished_blocks_are_not_checkpointed_but_fetched_again() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=3, start=1)
    feed(chain, world.mine(5))  # final 1, 2; blocks 3..5 only seen
    record = chain.checkpoint()
    assert record["final"] == {"number": 2, "hash": world.blocks[2].hash}
    assert record["next"] == 3
    assert [b["number"] for b in record["blocks"]] == [1, 2]
    assert Chain(confirmations=3, start=7).checkpoint()["next"] == 7


def test_deep_reorg_after_resume_retracts_logs_known_by_index_and_address() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=1)
    feed(chain, world.mine(4, logs=2))
    resumed = roundtrip(chain)
    changes = resumed.apply(world.reorg(2))
    retracted = [c for c in changes if c.status is R]
    assert summary(retracted) == [("r", 3, 1), ("r", 3, 0), ("r", 3, None)]
    assert retracted[0].log is not None
    assert retracted[0].log.address == CONTRACT


def test_replaying_published_events_restores_the_state_the_lost_checkpoint_had() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=2, emit_pending=True)
    feed(chain, world.mine(4, logs=1))
    old = chain.checkpoint()
    lost = feed(chain, world.mine(1, logs=1)) + chain.apply(world.reorg(3, logs=1))
    replayed = Chain.restore(json.loads(json.dumps(old)), 2, True)
    for change in lost:
        replayed.replay(through_events(change))
    replayed.end_replay()
    assert replayed.checkpoint() == chain.checkpoint()


def test_a_block_whose_logs_landed_without_it_is_published_again() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=0)
    old = chain.checkpoint()
    changes = chain.apply(world.mine(1, logs=2))
    replayed = Chain.restore(old, 0)
    for change in changes[:2]:  # the logs, not the block event that closes the group
        replayed.replay(through_events(change))
    replayed.end_replay()
    assert replayed.tip is None
    assert summary(replayed.apply(world.blocks[1:])) == summary(changes)


def test_history_is_bounded_and_a_reorg_beyond_it_replaces_what_is_remembered() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=1, history=3)
    feed(chain, world.mine(8))  # final up to 7; remembers 5, 6, 7 and 8
    assert chain.oldest == 5
    world.reorg(6)  # forks below what is remembered
    assert chain.attaches(world.blocks[5])
    changes = chain.apply(world.blocks[5:])
    assert summary(changes) == [("r", 7, None), ("r", 6, None), ("r", 5, None),
                                ("f", 5, None), ("f", 6, None), ("f", 7, None)]


def test_event_ids_are_deterministic_and_retractions_name_what_they_retract() -> None:
    world = MemoryChain()
    chain = Chain(confirmations=0)
    final = chain.apply(world.mine(1, logs=1))
    again = Chain(confirmations=0).apply(world.blocks[1:])
    ids = [to_event(c, "eth", 1337).id for c in final]
    assert ids == [to_event(c, "eth", 1337).id for c in again]
    assert len(set(ids)) == 2
    assert to_event(final[0], "other", 1337).id != ids[0]
    retractions = chain.apply(world.reorg(1))[:2]
    events = [to_event(c, "eth", 1337) for c in retractions]
    assert [e.type for e in events] == ["dev.faasflow.ethereum.log.retracted",
                                        "dev.faasflow.ethereum.block.retracted"]
    assert [e.extensions[RETRACTS] for e in events] == ids
    assert {e.extensions[STATUS] for e in events} == {"retracted"}
    log_event = to_event(final[0], "eth", 1337)
    data = json.loads(log_event.data)
    assert data["address"] == CONTRACT
    assert data["logIndex"] == 0
    assert log_event.subject == CONTRACT
    assert event_id("eth", 1337, world.blocks[1].hash, None, F) != ids[1]  # another fork


def through_events(change: Change) -> Change:
    """A change as it comes back from the event topic."""
    event = to_event(change, "eth", 1337)
    parsed = from_event(type(event).from_dict(json.loads(json.dumps(event.to_dict()))))
    assert parsed is not None
    return parsed
