"""The chain-tracking core: which block and log events to publish, and when. No RPC here.

    remembered chain:   F F F F F │ U U U      F = published final, U = unconfirmed
                        ▲ history │ ▲ confirmations deep, then final

``Chain.apply(segment)`` takes a linked run of blocks that attaches to the remembered chain
(its first block's parent is a remembered block, or it starts at or below the oldest
remembered block, or nothing is remembered yet). Remembered blocks at the segment's heights
are the old side of a reorg: whatever was published of them is retracted, newest first; then
the segment is appended, and every block ``confirmations`` deep becomes final. Pending events
for the unconfirmed blocks are published only when asked for.

Within a block, log events come before the block event, and retractions before the block's
retraction: the block event closes its group, so a batch that landed only in part can be
replayed (``Chain.replay``) without believing a log was published when it was not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import pairwise
from typing import Any


@dataclass(frozen=True, slots=True)
class Log:
    block_number: int
    block_hash: str
    index: int
    address: str
    topics: tuple[str, ...] = ()
    data: str = "0x"
    transaction_hash: str = ""


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    logs: tuple[Log, ...] = ()


class Status(StrEnum):
    PENDING = "pending"
    FINAL = "final"
    RETRACTED = "retracted"


@dataclass(frozen=True, slots=True)
class Change:
    """One event to publish: a block (``log`` None) or one of its logs, with its status.
    A retraction names the status of the event it takes back in ``retracted``."""

    status: Status
    block: Block
    log: Log | None = None
    retracted: Status | None = None


@dataclass(slots=True)
class _Tracked:
    block: Block
    published: Status | None = None  # None: seen, nothing published yet
    logs_known: bool = True  # False after a restore: only the logs' index and address are


@dataclass(slots=True)
class Chain:
    """The recent chain, as far as it matters for what was and will be published.

    ``history`` bounds how many final blocks are remembered: a reorg deeper than that
    cannot find its common ancestor and replaces the whole remembered chain.
    """

    confirmations: int
    emit_pending: bool = False
    history: int = 64
    start: int | None = None  # where to begin while nothing is remembered
    _blocks: list[_Tracked] = field(default_factory=list, init=False, repr=False)
    _staged: dict[str, dict[int, Log]] = field(default_factory=dict, init=False, repr=False)

    # -- queries --------------------------------------------------------------------------

    @property
    def tip(self) -> Block | None:
        return self._blocks[-1].block if self._blocks else None

    @property
    def final(self) -> Block | None:
        finals = [t.block for t in self._blocks if t.published is Status.FINAL]
        return finals[-1] if finals else None

    @property
    def oldest(self) -> int | None:
        return self._blocks[0].block.number if self._blocks else None

    def next_number(self) -> int | None:
        """The height to fetch next: above the tip, or ``start`` when nothing is remembered."""
        return self._blocks[-1].block.number + 1 if self._blocks else self.start

    def get(self, number: int) -> Block | None:
        oldest = self.oldest
        if oldest is None or not oldest <= number < oldest + len(self._blocks):
            return None
        return self._blocks[number - oldest].block

    def contains(self, block: Block) -> bool:
        known = self.get(block.number)
        return known is not None and known.hash == block.hash

    def attaches(self, block: Block) -> bool:
        """Whether ``block`` can start a segment: its parent is remembered, nothing is, or it
        lies at or below the oldest remembered height (the ancestor is out of memory)."""
        if not self._blocks or block.number <= self._blocks[0].block.number:
            return True
        parent = self.get(block.number - 1)
        return parent is not None and parent.hash == block.parent_hash

    def unknown_logs(self) -> list[Block]:
        """Pending blocks restored from a checkpoint, whose full logs must be fetched again
        (``hydrate``) before they can become final."""
        return [t.block for t in self._blocks
                if t.published is Status.PENDING and not t.logs_known]

    # -- transitions ----------------------------------------------------------------------

    def apply(self, segment: Sequence[Block]) -> list[Change]:
        """Adopt ``segment`` as the chain from its first height on; the events that follows."""
        blocks = list(segment)
        while blocks and self.contains(blocks[0]):
            blocks.pop(0)
        if not blocks:
            return []
        _check_linked(blocks)
        first = blocks[0]
        if self._blocks and first.number > self._blocks[-1].block.number + 1:
            raise ValueError(f"block {first.number} leaves a gap above the tip")
        if not self.attaches(first):
            raise ValueError(f"block {first.number} {first.hash} does not attach to the chain")
        kept = [t for t in self._blocks if t.block.number < first.number]
        dropped = [t for t in self._blocks if t.block.number >= first.number]
        changes: list[Change] = []
        for tracked in reversed(dropped):
            changes.extend(_retractions(tracked))
        self._blocks = kept + [_Tracked(b) for b in blocks]
        changes.extend(self._promote())
        self._trim()
        return changes

    def hydrate(self, block: Block, logs: Sequence[Log]) -> None:
        """The full logs of a remembered block, fetched again after a restore."""
        for tracked in self._blocks:
            if tracked.block.hash == block.hash:
                tracked.block = replace(tracked.block, logs=_sorted(logs))
                tracked.logs_known = True

    def replay(self, change: Change) -> None:
        """Take into account an event that was published but not checkpointed."""
        block = change.block
        if change.status is Status.RETRACTED:
            if change.log is None:
                index = self._index_of(block.hash)
                if index is not None:
                    del self._blocks[index:]
            return
        if change.log is not None:  # held until the block event that closes its group
            self._staged.setdefault(block.hash, {})[change.log.index] = change.log
            return
        logs = _sorted(self._staged.pop(block.hash, {}).values())
        index = self._index_of(block.hash)
        if index is None:
            self._blocks = [t for t in self._blocks if t.block.number < block.number]
            if self._blocks and self._blocks[-1].block.hash != block.parent_hash:
                self._blocks = []  # not linked to what we remember: start over from here
            self._blocks.append(_Tracked(replace(block, logs=logs), change.status))
        else:
            tracked = self._blocks[index]
            tracked.block = replace(tracked.block, logs=logs)
            tracked.logs_known = True
            if tracked.published is not Status.FINAL:
                tracked.published = change.status
        self._trim()

    def end_replay(self) -> None:
        self._staged.clear()  # logs whose block event never landed: they will be sent again

    # -- checkpoint -----------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """What was published, compactly: blocks, and per block the published logs' index
        and address (enough to retract them). Blocks seen but not yet published are not
        kept: a restart fetches them again from ``next``."""
        published = [t for t in self._blocks if t.published is not None]
        final = self.final
        if published:
            next_number: int | None = published[-1].block.number + 1
        elif self._blocks:
            next_number = self._blocks[0].block.number
        else:
            next_number = self.start
        return {
            "final": None if final is None else {"number": final.number, "hash": final.hash},
            "next": next_number,
            "blocks": [_block_record(t) for t in published],
        }

    @classmethod
    def restore(cls, record: Mapping[str, Any], confirmations: int, emit_pending: bool = False,
                history: int = 64) -> Chain:
        chain = cls(confirmations, emit_pending, history, start=record.get("next"))
        for item in record.get("blocks", ()):
            number, block_hash = int(item["number"]), str(item["hash"])
            logs = tuple(Log(number, block_hash, int(i), address)
                         for address, indexes in item.get("logs", {}).items() for i in indexes)
            block = Block(number, block_hash, str(item["parentHash"]), int(item["timestamp"]),
                          _sorted(logs))
            chain._blocks.append(_Tracked(block, Status(item["status"]), logs_known=False))
        return chain

    # -- internals ------------------------------------------------------------------------

    def _promote(self) -> list[Change]:
        changes: list[Change] = []
        tip = self._blocks[-1].block.number
        for tracked in self._blocks:
            block = tracked.block
            if tracked.published is Status.FINAL:
                continue
            if tip - block.number >= self.confirmations:
                if not tracked.logs_known:
                    raise RuntimeError(f"block {block.number}: its logs were not fetched again")
                changes.extend(_group(block, Status.FINAL))
                tracked.published = Status.FINAL
            elif self.emit_pending and tracked.published is None:
                changes.extend(_group(block, Status.PENDING))
                tracked.published = Status.PENDING
        return changes

    def _trim(self) -> None:
        finals = sum(1 for t in self._blocks if t.published is Status.FINAL)
        excess = max(0, finals - self.history)
        del self._blocks[:excess]

    def _index_of(self, block_hash: str) -> int | None:
        for index, tracked in enumerate(self._blocks):
            if tracked.block.hash == block_hash:
                return index
        return None


def _group(block: Block, status: Status) -> list[Change]:
    return [*(Change(status, block, log) for log in block.logs), Change(status, block)]


def _retractions(tracked: _Tracked) -> list[Change]:
    if tracked.published is None:
        return []
    block, was = tracked.block, tracked.published
    return [*(Change(Status.RETRACTED, block, log, was) for log in reversed(block.logs)),
            Change(Status.RETRACTED, block, None, was)]


def _check_linked(blocks: Sequence[Block]) -> None:
    for parent, child in pairwise(blocks):
        if child.number != parent.number + 1 or child.parent_hash != parent.hash:
            raise ValueError(f"block {child.number} does not follow block {parent.number}")


def _sorted(logs: Any) -> tuple[Log, ...]:
    return tuple(sorted(logs, key=lambda log: log.index))


def _block_record(tracked: _Tracked) -> dict[str, Any]:
    block = tracked.block
    logs: dict[str, list[int]] = {}
    for log in block.logs:
        logs.setdefault(log.address, []).append(log.index)
    assert tracked.published is not None
    return {"number": block.number, "hash": block.hash, "parentHash": block.parent_hash,
            "timestamp": block.timestamp, "status": tracked.published.value, "logs": logs}
