"""An in-memory chain with forks, a ``Node`` over it and a ``Sink`` that keeps what it is
given: real implementations of the connector's ports, for tests without a node or Kafka."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from eth_utils import to_checksum_address

from connectors.base import Checkpoint, Report, Resumption
from connectors.ethereum.chain import Block, Log
from connectors.ethereum.config import EthereumConfig
from connectors.ethereum.node import ChainMoved, NodeUnavailable
from pipeline.records import Event

CONTRACT = to_checksum_address("0x" + "ab" * 20)
TOPIC = "0x" + "11" * 32


def _hash(*parts: object) -> str:
    return "0x" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


class MemoryChain:
    """A canonical chain that tests grow with ``mine`` and reorganize with ``reorg``; every
    fork gets its own hashes, as another miner's blocks would."""

    def __init__(self, chain_id: int = 1337) -> None:
        self.chain_id = chain_id
        self.blocks = [Block(0, _hash("genesis"), "0x" + "00" * 32, 1_700_000_000)]
        self.forks = 0
        self.changed = asyncio.Event()

    @property
    def head(self) -> Block:
        return self.blocks[-1]

    def mine(self, count: int = 1, *, logs: int = 0, address: str = CONTRACT) -> list[Block]:
        """``count`` blocks, each with ``logs`` logs from ``address``."""
        mined = []
        for _ in range(count):
            parent = self.head
            number = parent.number + 1
            block_hash = _hash(self.forks, number, parent.hash)
            block_logs = tuple(
                Log(number, block_hash, i, address, (TOPIC,), f"0x{i:02x}",
                    _hash("tx", block_hash, i))
                for i in range(logs)
            )
            block = Block(number, block_hash, parent.hash, parent.timestamp + 12, block_logs)
            self.blocks.append(block)
            mined.append(block)
        self.changed.set()
        return mined

    def reorg(self, depth: int, new_length: int | None = None, *, logs: int = 0) -> list[Block]:
        """Drop the last ``depth`` blocks and mine ``new_length`` (default: as many) others."""
        self.forks += 1
        del self.blocks[len(self.blocks) - depth:]
        return self.mine(depth if new_length is None else new_length, logs=logs)


class MemoryNode:
    def __init__(self, chain: MemoryChain) -> None:
        self.chain = chain
        self.failures = 0  # the next calls that fail, as a flaky node's would
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise NodeUnavailable("connection reset (simulated)")

    async def chain_id(self) -> int:
        self._call()
        return self.chain.chain_id

    async def head(self) -> Block:
        self._call()
        return _bare(self.chain.head)

    async def blocks(self, first: int, last: int) -> list[Block]:
        self._call()
        if last >= len(self.chain.blocks):
            raise ChainMoved(f"no block {last}")
        return [_bare(b) for b in self.chain.blocks[first:last + 1]]

    async def block_by_hash(self, block_hash: str) -> Block:
        self._call()
        for block in self.chain.blocks:
            if block.hash == block_hash:
                return _bare(block)
        raise ChainMoved(f"no block {block_hash}")

    async def logs(self, first: int, last: int, addresses: Sequence[str],
                   topics: Sequence[str]) -> list[Log]:
        self._call()
        return [log for block in self.chain.blocks[first:last + 1] for log in block.logs
                if (not addresses or log.address.lower() in {a.lower() for a in addresses})
                and (not topics or (log.topics[:1] and log.topics[0] in topics))]

    async def heads(self) -> AsyncGenerator[Block, None]:
        while True:
            self.chain.changed.clear()
            yield await self.head()
            await self.chain.changed.wait()


def connect_to(node: MemoryNode) -> Any:
    @asynccontextmanager
    async def connect(config: EthereumConfig) -> AsyncIterator[MemoryNode]:
        node._call()
        yield node

    return connect


def _bare(block: Block) -> Block:
    return Block(block.number, block.hash, block.parent_hash, block.timestamp)


class Crash(Exception):
    """The process died between publishing a batch and writing its checkpoint."""


class MemorySink:
    """Keeps every published event in order, the last checkpoint with its position, and
    what the connector reported."""

    def __init__(self, report: Report | None = None) -> None:
        self.events: list[Event] = []
        self.reports: list[Exception | None] = []
        self._report = report  # passed on, as a worker's sink passes it to the supervisor
        self.reported = asyncio.Event()
        self.checkpoint: Checkpoint | None = None
        self.checkpointed_at = 0
        self.crash_before_checkpoint = False
        self.committed = asyncio.Event()

    async def resume(self) -> Resumption:
        return Resumption(self.checkpoint, tuple(self.events[self.checkpointed_at:]))

    async def commit(self, events: Sequence[Event], checkpoint: Checkpoint) -> None:
        self.events.extend(events)
        if self.crash_before_checkpoint:
            self.crash_before_checkpoint = False
            raise Crash
        self.checkpoint = json.loads(json.dumps(checkpoint))  # as Kafka would keep it
        self.checkpointed_at = len(self.events)
        self.committed.set()

    def report(self, error: Exception | None) -> None:
        self.reports.append(error)
        self.reported.set()
        if self._report is not None:
            self._report(error)
