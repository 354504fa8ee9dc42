"""The Ethereum connector over an in-memory node and sink: catch-up, reorgs, node failures,
crashes between publishing and checkpointing, restarts after downtime."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from connectors.ethereum import EthereumConfig, EthereumConnector
from connectors.ethereum.node import WrongChain
from tests.unit.ethereum_support import (
    CONTRACT,
    Crash,
    MemoryChain,
    MemoryNode,
    MemorySink,
    connect_to,
)

BLOCK = "dev.faasflow.ethereum.block"


def config(**fields: Any) -> EthereumConfig:
    return EthereumConfig.model_validate({"url": "http://node.invalid", "confirmations": 2,
                                          "addresses": [CONTRACT], "poll_interval_s": 0.05,
                                          **fields})


def finals(sink: MemorySink, kind: str = BLOCK) -> list[int]:
    return [json.loads(e.data)["number"] for e in sink.events
            if e.type == kind and e.extensions["faasflowstatus"] == "final"]


async def until(sink: MemorySink, check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for ``check`` to hold, looking again after each commit."""
    async with asyncio.timeout(timeout_s):
        while True:
            sink.committed.clear()
            if check():
                return
            await sink.committed.wait()


class Running:
    def __init__(self, connector: EthereumConnector, sink: MemorySink) -> None:
        self.task = asyncio.create_task(connector.run(sink))

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def test_follows_the_chain_and_checkpoints_each_batch() -> None:
    world, sink = MemoryChain(), MemorySink()
    world.mine(3)
    running = Running(EthereumConnector("eth", "chain", config(), connect_to(MemoryNode(world))),
                      sink)
    await until(sink, lambda: sink.checkpoint is not None)  # the start is remembered at once
    assert sink.checkpoint is not None
    assert sink.checkpoint["next"] == 3
    world.mine(4, logs=1)
    await until(sink, lambda: finals(sink) == [3, 4, 5])
    await running.stop()
    assert sink.checkpoint["chain_id"] == 1337
    assert sink.checkpoint["final"]["number"] == 5
    logs = [e for e in sink.events if e.type == "dev.faasflow.ethereum.log"]
    assert [json.loads(e.data)["blockNumber"] for e in logs] == [4, 5]


async def test_node_failures_back_off_and_leave_no_gap_or_duplicate() -> None:
    world, sink = MemoryChain(), MemorySink()
    node = MemoryNode(world)
    running = Running(EthereumConnector("eth", "chain", config(start_block=1),
                                        connect_to(node)), sink)
    world.mine(3)
    await until(sink, lambda: finals(sink) == [1])
    node.failures = 4
    world.mine(5)
    await until(sink, lambda: finals(sink) == list(range(1, 7)))
    await running.stop()
    assert node.failures == 0
    assert len({e.id for e in sink.events}) == len(sink.events)


async def test_a_deep_reorg_is_retracted_then_the_new_chain_published() -> None:
    world, sink = MemoryChain(), MemorySink()
    running = Running(EthereumConnector("eth", "chain", config(start_block=1),
                                        connect_to(MemoryNode(world))), sink)
    world.mine(8, logs=1)
    await until(sink, lambda: finals(sink) == list(range(1, 7)))
    world.reorg(4, logs=1)  # 5..8 replaced; 5 and 6 were final
    await until(sink, lambda: len(finals(sink)) == 8)
    await running.stop()
    retracted = [(e.type.rsplit(".", 2)[-2], json.loads(e.data)["blockNumber"])
                 for e in sink.events if e.extensions["faasflowstatus"] == "retracted"]
    assert retracted == [("log", 6), ("block", 6), ("log", 5), ("block", 5)]
    assert finals(sink) == [1, 2, 3, 4, 5, 6, 5, 6]


async def test_a_crash_between_publish_and_checkpoint_repeats_nothing() -> None:
    world, sink = MemoryChain(), MemorySink()
    first = EthereumConnector("eth", "chain", config(start_block=1, emit_pending=True),
                              connect_to(MemoryNode(world)))
    world.mine(4, logs=2)
    running = Running(first, sink)
    await until(sink, lambda: finals(sink) == [1, 2])
    sink.crash_before_checkpoint = True
    world.mine(2, logs=2)
    with pytest.raises(Crash):
        await running.task
    world.mine(3, logs=2)
    second = Running(EthereumConnector("eth", "chain", config(start_block=1, emit_pending=True),
                                       connect_to(MemoryNode(world))), sink)
    await until(sink, lambda: finals(sink) == list(range(1, 8)))
    await second.stop()
    ids = [e.id for e in sink.events]
    assert len(set(ids)) == len(ids)
    pending = [json.loads(e.data)["number"] for e in sink.events
               if e.type == BLOCK and e.extensions["faasflowstatus"] == "pending"]
    assert pending == [3, 4, 5, 6, 8, 9]  # 1, 2 and 7 were deep enough at once


async def test_a_restart_after_downtime_backfills_in_batches() -> None:
    world, sink = MemoryChain(), MemorySink()
    node = MemoryNode(world)
    running = Running(EthereumConnector("eth", "chain", config(batch_blocks=4),
                                        connect_to(node)), sink)
    await until(sink, lambda: sink.checkpoint is not None)
    world.mine(3)
    await until(sink, lambda: finals(sink) == [0, 1])
    await running.stop()
    world.mine(20, logs=1)
    checkpoints = []
    sink.commit = _spy(sink.commit, checkpoints)  # type: ignore[method-assign]
    running = Running(EthereumConnector("eth", "chain", config(batch_blocks=4),
                                        connect_to(node)), sink)
    await until(sink, lambda: finals(sink) == list(range(22)))
    await running.stop()
    assert len(checkpoints) >= 5  # 20 blocks, at most 4 a batch


async def test_another_chain_behind_the_url_is_refused() -> None:
    world, sink = MemoryChain(), MemorySink()
    running = Running(EthereumConnector("eth", "chain", config(),
                                        connect_to(MemoryNode(world))), sink)
    await until(sink, lambda: sink.checkpoint is not None)
    await running.stop()
    other = EthereumConnector("eth", "chain", config(), connect_to(MemoryNode(MemoryChain(5))))
    with pytest.raises(WrongChain):
        await other.run(sink)


def _spy(commit: Any, calls: list[Any]) -> Any:
    async def spy(events: Any, checkpoint: Any) -> None:
        calls.append(checkpoint)
        await commit(events, checkpoint)

    return spy
