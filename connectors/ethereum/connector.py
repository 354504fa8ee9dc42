"""The Ethereum connector: follows a node's heads, feeds the chain core, publishes its events.

One step, for each head the node announces (or polling finds):

    fetch the next blocks by number (at most ``batch_blocks``), or the head itself when it
      is not above the remembered tip (a reorg at the same or a lower height)
    walk back by parent hash until the blocks attach to the remembered chain
    fetch their logs with one range query; every log must belong to one of those blocks
    check the last block is still canonical (else the chain moved: read again)
    Chain.apply → events → sink.commit(events, checkpoint)

A missed range (downtime, skipped heads) is just a longer catch-up. Node errors back off
with jitter and reconnect (a new subscription); the sink retries its own broker errors.
Another chain behind the URL (``WrongChain``), or a request the node refuses as configured
(``NodeRefused``), is permanent: ``run`` raises it and the connector is marked failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import replace
from itertools import pairwise

from connectors.base import Resumption, Sink, describe, retrying
from connectors.ethereum.chain import Block, Chain, Change, Status
from connectors.ethereum.config import EthereumConfig
from connectors.ethereum.events import CHAIN_ID, from_event, to_event
from connectors.ethereum.node import ChainMoved, Node, WrongChain
from pipeline.errors import RetryableError

log = logging.getLogger(__name__)

Connect = Callable[[EthereumConfig], AbstractAsyncContextManager[Node]]
MOVED_RETRIES = 3


class EthereumConnector:
    def __init__(self, name: str, source: str, config: EthereumConfig,
                 connect: Connect | None = None) -> None:
        self.name = name
        self.source = source
        self.config = config
        self._connect = connect
        self._chain: Chain | None = None
        self._chain_id: int | None = None
        self._published: set[str] = set()  # landed after the last checkpoint, before a crash
        self._checkpointed = False

    async def run(self, sink: Sink) -> None:
        connect = self._connect or _web3_connect
        resumption = await sink.resume()
        while True:
            async for attempt in retrying(f"ethereum {self.name}", (RetryableError,),
                                          sink.report, base_s=min(1.0, self.config.poll_interval_s),
                                          cap_s=60.0):
                with attempt:
                    await self._session(connect, resumption, sink)

    async def _session(self, connect: Connect, resumption: Resumption, sink: Sink) -> None:
        """One connection, following heads until the node fails. A failure before any head
        was processed is raised (back off before connecting again); one after is reported
        and returned from: the session worked, so the next connects at once."""
        progressed = False
        try:
            async with connect(self.config) as node:
                await self._start(node, resumption)
                async with aclosing(node.heads()) as heads:
                    async for head in heads:
                        await self._follow(node, head, sink)
                        sink.report(None)
                        progressed = True
        except RetryableError as exc:
            if not progressed:
                raise
            log.warning("ethereum %s: %s; reconnecting", self.name, describe(exc))
            sink.report(exc)

    async def _start(self, node: Node, resumption: Resumption) -> None:
        chain_id = await node.chain_id()
        if self._chain_id is not None and chain_id != self._chain_id:
            raise WrongChain(f"{self.config.url} serves chain {chain_id}, not {self._chain_id}")
        if self._chain is None:
            self._chain = self._restore(resumption, chain_id)
            self._chain_id = chain_id

    def _restore(self, resumption: Resumption, chain_id: int) -> Chain:
        config, checkpoint = self.config, resumption.checkpoint
        if checkpoint is None:
            chain = Chain(config.confirmations, config.emit_pending, config.max_reorg_depth,
                          start=config.start_block)
        else:
            if checkpoint.get("chain_id") != chain_id:
                raise WrongChain(f"{config.url} serves chain {chain_id}; connector {self.name} "
                                 f"was following chain {checkpoint.get('chain_id')}")
            chain = Chain.restore(checkpoint, config.confirmations, config.emit_pending,
                                  config.max_reorg_depth)
            self._checkpointed = True
        for event in resumption.published_since:
            if event.extensions.get(CHAIN_ID) != str(chain_id):
                continue
            try:
                change = from_event(event)
            except (KeyError, ValueError, TypeError) as exc:
                log.warning("ethereum %s: ignoring unreadable event %s: %r", self.name,
                            event.id, exc)
                continue
            if change is not None:
                chain.replay(change)
                self._published.add(event.id)
        chain.end_replay()
        final = chain.final
        log.info("ethereum %s: chain %d, resuming at block %s (last final %s, %d events "
                 "published since the checkpoint)", self.name, chain_id, chain.next_number(),
                 final.number if final else None, len(self._published))
        return chain

    async def _follow(self, node: Node, head: Block, sink: Sink) -> None:
        for attempt in range(MOVED_RETRIES):
            try:
                await self._catch_up(node, head, sink)
                return
            except ChainMoved as exc:
                log.info("ethereum %s: %s; reading again (%d)", self.name, exc, attempt + 1)
                head = await node.head()
        raise ChainMoved(f"the chain kept moving under {MOVED_RETRIES} reads")

    async def _catch_up(self, node: Node, head: Block, sink: Sink) -> None:
        chain = self._chain
        assert chain is not None
        if chain.next_number() is None:
            chain.start = head.number
        while not chain.contains(head):
            await self._hydrate(node)
            segment = await self._segment(node, head)
            if not segment:
                return
            segment = await self._with_logs(node, segment)
            await self._still_canonical(node, segment[-1])
            changes = chain.apply(segment)
            await self._commit(changes, sink)
            tip = chain.tip
            if tip is None or tip.number >= head.number:
                return

    async def _segment(self, node: Node, head: Block) -> list[Block]:
        chain = self._chain
        assert chain is not None
        tip, first = chain.tip, chain.next_number()
        assert first is not None
        if tip is not None and head.number <= tip.number:
            segment = [head]
        elif head.number < first:
            return []  # the start block is not mined yet
        elif head.number == first:
            segment = [head]
        else:
            last = min(head.number, first + self.config.batch_blocks - 1)
            segment = await node.blocks(first, last)
        for parent, child in pairwise(segment):
            if child.parent_hash != parent.hash:
                raise ChainMoved(f"block {child.number} is not a child of the block before it")
        while not chain.attaches(segment[0]):
            segment.insert(0, await node.block_by_hash(segment[0].parent_hash))
        oldest = chain.oldest
        if oldest is not None and segment[0].number <= oldest and not chain.contains(segment[0]):
            log.warning("ethereum %s: reorg deeper than the %d blocks remembered; replacing "
                        "them all from block %d", self.name, self.config.max_reorg_depth,
                        segment[0].number)
        return segment

    async def _with_logs(self, node: Node, segment: list[Block]) -> list[Block]:
        config = self.config
        if not config.wants_logs:
            return segment
        found = await node.logs(segment[0].number, segment[-1].number, config.addresses,
                                config.topics)
        by_hash: dict[str, list] = {block.hash: [] for block in segment}
        for entry in found:
            if entry.block_hash not in by_hash:
                raise ChainMoved(f"a log of block {entry.block_number} came from another fork")
            by_hash[entry.block_hash].append(entry)
        return [replace(b, logs=tuple(sorted(by_hash[b.hash], key=lambda e: e.index)))
                for b in segment]

    async def _still_canonical(self, node: Node, block: Block) -> None:
        (now,) = await node.blocks(block.number, block.number)
        if now.hash != block.hash:
            raise ChainMoved(f"block {block.number} was replaced while it was read")

    async def _hydrate(self, node: Node) -> None:
        """Pending blocks restored from a checkpoint get their full logs back, if they are
        still canonical (those that are not will be retracted)."""
        chain = self._chain
        assert chain is not None
        unknown = chain.unknown_logs()
        if not unknown:
            return
        first, last = unknown[0].number, unknown[-1].number
        found = []
        if self.config.wants_logs:
            found = await node.logs(first, last, self.config.addresses, self.config.topics)
        canonical = {b.hash for b in await node.blocks(first, last)}
        for block in unknown:
            if block.hash in canonical:
                chain.hydrate(block, [e for e in found if e.block_hash == block.hash])

    async def _commit(self, changes: Sequence[Change], sink: Sink) -> None:
        chain = self._chain
        assert chain is not None
        assert self._chain_id is not None
        if not changes and self._checkpointed:
            return
        events = [to_event(c, self.source, self._chain_id) for c in changes]
        fresh = [e for e in events if e.id not in self._published]
        checkpoint = {"chain_id": self._chain_id, **chain.checkpoint()}
        await sink.commit(fresh, checkpoint)
        self._checkpointed = True
        if changes:  # what a crash left half-published is repeated by the first batch only
            self._published.clear()
        retracted = sum(1 for c in changes if c.status is Status.RETRACTED)
        if retracted:
            log.warning("ethereum %s: reorg: retracted %d events", self.name, retracted)
        final = chain.final
        log.info("ethereum %s: published %d events; tip %s, final %s", self.name, len(fresh),
                 chain.tip.number if chain.tip else None, final.number if final else None)


def _web3_connect(config: EthereumConfig) -> AbstractAsyncContextManager[Node]:
    from connectors.ethereum import web3node  # web3 is imported by workers only

    return web3node.connect(config)
