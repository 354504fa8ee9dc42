"""The connector supervisor with in-memory connectors, sinks and state board: a permanent
error marks a connector failed and leaves it stopped until its definition changes, a
transient one is retried and shown, and a removed connector's state goes with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from connectors import catalog
from connectors.base import Connector, Report, Sink
from connectors.ethereum import EthereumConfig, EthereumConnector
from pipeline.connector_states import ConnectorState, ConnectorStates, State
from pipeline.registry import Registry, encode, record_key
from pipeline.specs import ConnectorSpec
from pipeline.worker.connectors import ConnectorSupervisor
from tests.unit.ethereum_support import MemoryChain, MemoryNode, MemorySink, connect_to

SPEC = ConnectorSpec(name="eth", kind="ethereum", source="chain",
                     config={"url": "http://node.invalid", "confirmations": 1,
                             "poll_interval_s": 0.05},
                     created_at="2025-01-01T00:00:00.000000Z")
CHECKPOINT = {"chain_id": 1337, "final": None, "next": 1, "blocks": []}


class MemoryBoard:
    def __init__(self) -> None:
        self.posted: list[ConnectorState] = []
        self.removed: list[str] = []
        self.changed = asyncio.Event()

    def post(self, state: ConnectorState) -> None:
        self.posted.append(state)
        self.changed.set()

    def remove(self, name: str) -> None:
        self.removed.append(name)

    def states(self) -> list[State]:
        return [s.state for s in self.posted]


def ethereum(node: MemoryNode) -> Callable[[ConnectorSpec], Connector]:
    def build(spec: ConnectorSpec) -> Connector:
        config = EthereumConfig.model_validate(spec.config)
        return EthereumConnector(spec.name, spec.source, config, connect_to(node))

    return build


class Harness:
    def __init__(self, connector: Callable[[ConnectorSpec], Connector],
                 known: ConnectorStates | None = None) -> None:
        self.registry = Registry()
        self.board = MemoryBoard()
        self.builds: list[ConnectorSpec] = []
        self._connector = connector
        self.supervisor = ConnectorSupervisor(self.registry, 1, self.build, self.sink,
                                              self.board, known or ConnectorStates())

    def build(self, spec: ConnectorSpec) -> Connector:
        self.builds.append(spec)
        return self._connector(spec)

    def sink(self, spec: ConnectorSpec, report: Report) -> Sink:
        sink = MemorySink(report)
        sink.checkpoint = CHECKPOINT  # it followed chain 1337 before
        return sink

    def define(self, spec: ConnectorSpec | None, name: str = "eth") -> None:
        key = record_key(spec) if spec else f"connector/{name}"
        self.registry.apply(key.encode(), encode(spec) if spec else None)
        self.supervisor.reconcile()


async def until(board: MemoryBoard, check: Callable[[], Any], timeout_s: float = 5.0) -> None:
    """Wait for ``check`` to hold, looking again after each state posted."""
    async with asyncio.timeout(timeout_s):
        while True:
            board.changed.clear()
            if check():
                return
            await board.changed.wait()


async def test_a_permanent_error_fails_the_connector_until_its_definition_changes() -> None:
    harness = Harness(ethereum(MemoryNode(MemoryChain(chain_id=5))))  # another chain behind the URL
    harness.supervisor.assign({0})
    harness.define(SPEC)
    await until(harness.board, lambda: State.FAILED in harness.board.states())

    failed = harness.board.posted[-1]
    assert harness.board.states() == [State.STARTING, State.FAILED]
    assert failed.definition == SPEC.created_at
    assert failed.error is not None
    assert failed.error.startswith("WrongChain: ")
    assert failed.error_at == failed.at
    harness.supervisor.reconcile()
    await asyncio.sleep(0.2)
    assert len(harness.builds) == 1  # not restarted
    assert harness.supervisor.running == []

    harness.define(None)  # deleted, then added again: a new definition runs
    again = replace(SPEC, created_at="2025-01-02T00:00:00.000000Z")
    harness.define(again)
    await until(harness.board, lambda: harness.board.posted[-1].definition == again.created_at)
    assert len(harness.builds) == 2
    await harness.supervisor.stop()
    assert harness.board.removed == ["eth"]


async def test_a_connector_failed_before_is_not_started_again() -> None:
    known = ConnectorStates()
    known.apply(b"eth", ConnectorState("eth", SPEC.created_at, State.FAILED, "t", "w:1",
                                       "WrongChain: …", "t").encode())
    harness = Harness(ethereum(MemoryNode(MemoryChain())), known)
    harness.supervisor.assign({0})
    harness.define(SPEC)
    await asyncio.sleep(0.2)
    assert harness.builds == []
    assert harness.board.posted == []
    await harness.supervisor.stop()


async def test_transient_errors_show_as_retrying_then_running_with_the_last_error() -> None:
    node = MemoryNode(MemoryChain())
    node.failures = 2  # connecting fails twice
    harness = Harness(ethereum(node))
    harness.supervisor.assign({0})
    harness.define(SPEC)
    await until(harness.board, lambda: State.RUNNING in harness.board.states())
    await harness.supervisor.stop()

    assert harness.board.states() == [State.STARTING, State.RETRYING, State.RETRYING,
                                      State.RUNNING]
    retrying, running = harness.board.posted[-2:]
    assert retrying.error == "NodeUnavailable: connection reset (simulated)"
    assert (running.error, running.error_at) == (retrying.error, retrying.error_at)
    assert len(harness.builds) == 1  # retried inside the connector, not restarted


async def test_a_crashing_connector_is_restarted_with_backoff() -> None:
    class Broken:
        name = "eth"

        async def run(self, sink: Sink) -> None:
            raise ValueError("a bug")

    harness = Harness(lambda spec: Broken())
    harness.supervisor.assign({0})
    harness.define(SPEC)
    await until(harness.board, lambda: harness.board.states().count(State.RETRYING) >= 2)
    await harness.supervisor.stop()
    assert len(harness.builds) >= 2
    assert harness.board.states()[:2] == [State.STARTING, State.RETRYING]
    assert harness.board.posted[1].error == "ValueError: a bug"


async def test_a_definition_that_no_longer_validates_fails_the_connector() -> None:
    harness = Harness(catalog.build)
    harness.supervisor.assign({0})
    harness.define(replace(SPEC, config={**SPEC.config, "confirmations": -1}))
    await until(harness.board, lambda: State.FAILED in harness.board.states())
    await harness.supervisor.stop()
    error = harness.board.posted[-1].error
    assert error is not None
    assert error.startswith("InvalidRequest: invalid ethereum config: confirmations")


async def test_the_last_error_survives_a_restart_of_the_worker() -> None:
    known = ConnectorStates()
    known.apply(b"eth", ConnectorState("eth", SPEC.created_at, State.RUNNING, "t1", "w:1",
                                       "NodeUnavailable: gone", "t0").encode())
    harness = Harness(ethereum(MemoryNode(MemoryChain())), known)
    harness.supervisor.assign({0})
    harness.define(SPEC)
    await until(harness.board, lambda: State.RUNNING in harness.board.states())
    await harness.supervisor.stop()
    assert [(s.state, s.error, s.error_at) for s in harness.board.posted] == [
        (State.STARTING, "NodeUnavailable: gone", "t0"),
        (State.RUNNING, "NodeUnavailable: gone", "t0")]
