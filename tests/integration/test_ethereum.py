"""The Ethereum connector against a real local chain (ganache, installed by compose/setup.sh):
a log reaches a function end to end, reorgs shallower and deeper than the confirmations,
and a worker killed mid-stream.

Ganache mines one block per transaction and per ``evm_mine``; ``evm_snapshot`` /
``evm_revert`` followed by other transactions makes another chain at the same heights.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from pipeline.errors import BrokerUnavailable
from pipeline.kafka import read_from
from pipeline.settings import KafkaSettings, Settings
from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import Platform

BLOCK, LOG = "dev.faasflow.ethereum.block", "dev.faasflow.ethereum.log"
PING_TOPIC = Web3.keccak(text="Ping(bytes)")


def ganache_path() -> Path:
    """Where compose/setup.sh installs it; ``FAASFLOW_GANACHE`` names another one."""
    named = os.environ.get("FAASFLOW_GANACHE")
    if named:
        return Path(named)
    return Settings().cache_dir / "node" / "node_modules" / ".bin" / "ganache"


class Ganache:
    """A ganache process with deterministic accounts; blocks only when asked for."""

    def __init__(self, log_file: Path, chain_id: int = 1337) -> None:
        binary = ganache_path()
        if not binary.exists():
            pytest.fail(f"ganache is not installed at {binary}: run `bash compose/setup.sh`")
        self.port = free_port()
        self._log = log_file.open("wb")
        self.process = subprocess.Popen(
            [str(binary), "--miner.blockTime", "0", "--chain.chainId", str(chain_id),
             "--wallet.deterministic", "--server.host", "127.0.0.1",
             "--server.port", str(self.port), "--logging.quiet"],
            stdout=self._log, stderr=subprocess.STDOUT)
        self.w3 = Web3(Web3.HTTPProvider(self.http_url, request_kwargs={"timeout": 30}))
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ganache did not start: {log_file.read_text()[-2000:]}")
            time.sleep(0.2)
        self.account = self.w3.eth.accounts[0]
        self._lock = threading.Lock()  # transactions from one account, one at a time

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        try:
            return bool(self.w3.is_connected())
        except Exception:
            return False

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def mine(self, count: int = 1) -> None:
        with self._lock:
            for _ in range(count):
                self.w3.provider.make_request("evm_mine", [])

    def snapshot(self) -> str:
        return str(self.w3.provider.make_request("evm_snapshot", [])["result"])

    def revert(self, snapshot: str) -> None:
        assert self.w3.provider.make_request("evm_revert", [snapshot])["result"]

    def deploy_pinger(self) -> str:
        """A contract whose code is ``LOG1(calldata, keccak("Ping(bytes)"))``, by hand."""
        runtime = bytes.fromhex("366000600037") + b"\x7f" + PING_TOPIC + bytes.fromhex("366000a100")
        init = bytes([0x60, len(runtime), 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3])
        receipt = self._transact({"data": "0x" + (init + runtime).hex()})
        return str(receipt["contractAddress"])

    def ping(self, contract: str, payload: bytes) -> tuple[int, str]:
        """A transaction whose log carries ``payload``; its block number and hash."""
        receipt = self._transact({"to": contract, "data": "0x" + payload.hex()})
        assert receipt["status"] == 1
        assert len(receipt["logs"]) == 1
        return int(receipt["blockNumber"]), receipt["transactionHash"].to_0x_hex()

    def block_hash(self, number: int) -> str:
        return self.w3.eth.get_block(number)["hash"].to_0x_hex()

    def _transact(self, fields: dict[str, Any]) -> Any:
        with self._lock:
            tx = self.w3.eth.send_transaction({"from": self.account, **fields})
            return self.w3.eth.wait_for_transaction_receipt(tx, timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()


@pytest.fixture(scope="session")
def ganache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ganache]:
    chain = Ganache(tmp_path_factory.mktemp("ganache") / "ganache.log")
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
def other_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ganache]:
    chain = Ganache(tmp_path_factory.mktemp("ganache") / "other.log", chain_id=1338)
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
def pinger(ganache: Ganache) -> str:
    return ganache.deploy_pinger()


def add_connector(platform: Platform, name: str, **config: Any) -> None:
    response = platform.api.post("/v1/connectors", json={
        "name": name, "kind": "ethereum", "source": name, "config": config,
    })
    assert response.status_code == 201, response.text


def topic_events(kafka: KafkaContainer, topic: str) -> list[dict[str, Any]]:
    """Every event on ``topic`` up to its end now, in the order the connector published
    them (its events share one partition)."""
    try:
        records = asyncio.run(read_from(KafkaSettings(bootstrap=kafka.bootstrap), topic, {}))
    except BrokerUnavailable:  # no such topic yet
        return []
    return [json.loads(value) for _, _, _, value in sorted(records, key=lambda r: r[:2])
            if value is not None]


def status(event: dict[str, Any]) -> str:
    return str(event["faasflowstatus"])


def final_blocks(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(e["data"]["number"], e["data"]["hash"]) for e in events
            if e["type"] == BLOCK and status(e) == "final"]


def wait_for(check: Any, timeout_s: float = 40.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting {what}"
        time.sleep(0.2)
    return value


def finalized_up_to(kafka: KafkaContainer, topic: str, number: int,
                    timeout_s: float = 40.0) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        events = topic_events(kafka, topic)
        return events if any(n >= number for n, _ in final_blocks(events)) else None

    return wait_for(check, timeout_s, f"for block {number} to be final")


def test_a_log_reaches_a_subscribed_function(kafka: KafkaContainer, platform: Platform,
                                             ganache: Ganache, pinger: str,
                                             unique: str) -> None:
    platform.deploy(f"{unique}-echo", "faasflow/echo:latest")
    platform.subscribe(f"{unique}-echo", unique)
    start = ganache.head + 1
    add_connector(platform, unique, url=ganache.ws_url, confirmations=1, addresses=[pinger],
                  start_block=start)
    number, tx = ganache.ping(pinger, b"hello chain")
    ganache.mine(1)
    topic = f"{platform.prefix}.events.{unique}"
    events = finalized_up_to(kafka, topic, number)
    (log,) = [e for e in events if e["type"] == LOG]
    assert status(log) == "final"
    assert log["data"]["transactionHash"] == tx
    assert log["data"]["address"] == pinger
    assert log["data"]["topics"] == [PING_TOPIC.to_0x_hex()]
    assert bytes.fromhex(log["data"]["data"][2:]) == b"hello chain"
    assert log["faasflowblocknumber"] == str(number)
    assert log["faasflowblockhash"] == ganache.block_hash(number)
    assert log["subject"] == pinger

    (result,) = platform.results(log["id"])
    assert result["status"] == "succeeded", result
    assert json.loads(result["output"])["transactionHash"] == tx  # echo: the event's data


def test_a_reorg_shallower_than_the_confirmations_emits_nothing_wrong(
    kafka: KafkaContainer, platform: Platform, ganache: Ganache, pinger: str, unique: str
) -> None:
    start = ganache.head + 1
    added = subprocess.run(  # through the CLI, as a user would
        [sys.executable, "-m", "pipeline", "connector", "add", "ethereum", "--url",
         ganache.http_url, "--confirmations", "3", "--address", pinger, "--topic",
         PING_TOPIC.to_0x_hex(), "--start-block", str(start), "--poll-interval", "0.1",
         "--name", unique, "--json"],
        env=platform.env, capture_output=True, text=True, timeout=60, check=False)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["config"]["topics"] == [PING_TOPIC.to_0x_hex()]
    topic = f"{platform.prefix}.events.{unique}"
    ganache.ping(pinger, b"kept")
    ganache.mine(3)
    finalized_up_to(kafka, topic, start)

    snapshot = ganache.snapshot()
    dropped, _ = ganache.ping(pinger, b"dropped")  # start+4, then start+5: never 3 deep
    ganache.mine(1)
    finalized_up_to(kafka, topic, start + 2)  # the connector has seen start+5
    dropped_hashes = {ganache.block_hash(dropped), ganache.block_hash(dropped + 1)}
    ganache.revert(snapshot)
    replaced, _ = ganache.ping(pinger, b"replacement")  # another chain at the same heights
    assert replaced == dropped
    ganache.mine(4)
    events = finalized_up_to(kafka, topic, dropped + 1)

    assert [e for e in events if status(e) != "final"] == []  # no retraction, no pending
    finals = final_blocks(events)
    assert [n for n, _ in finals] == list(range(start, dropped + 2))
    assert dropped_hashes.isdisjoint(h for _, h in finals)
    assert [h for n, h in finals if n >= dropped] == [ganache.block_hash(dropped),
                                                       ganache.block_hash(dropped + 1)]
    payloads = [bytes.fromhex(e["data"]["data"][2:]) for e in events if e["type"] == LOG]
    assert payloads == [b"kept", b"replacement"]


def test_a_reorg_deeper_than_the_confirmations_is_retracted(
    kafka: KafkaContainer, platform: Platform, ganache: Ganache, pinger: str, unique: str
) -> None:
    start = ganache.head + 1
    add_connector(platform, unique, url=ganache.http_url, confirmations=2, addresses=[pinger],
                  start_block=start, poll_interval_s=0.1)
    topic = f"{platform.prefix}.events.{unique}"
    ganache.mine(2)
    snapshot = ganache.snapshot()  # at start+1
    fork, _ = ganache.ping(pinger, b"old chain")  # start+2
    ganache.mine(4)  # up to start+6: final up to start+4
    before = finalized_up_to(kafka, topic, fork + 2)
    old_finals = {e["id"]: e for e in before if status(e) == "final"}
    old_hashes = [ganache.block_hash(n) for n in range(fork, fork + 3)]

    ganache.revert(snapshot)  # a 5-block reorg: start+2..start+6 replaced
    assert ganache.ping(pinger, b"new chain")[0] == fork
    ganache.mine(4)
    new_tip = ganache.block_hash(fork + 2)

    def new_chain_final() -> list[dict[str, Any]] | None:
        events = topic_events(kafka, topic)
        return events if final_blocks(events)[-1][1] == new_tip else None

    events = wait_for(new_chain_final, what="for the new chain to be final")

    after = events[len(before):]
    retractions = [e for e in after if status(e) == "retracted"]
    assert [(e["type"], e["data"]["blockNumber"]) for e in retractions] == [
        (f"{BLOCK}.retracted", fork + 2), (f"{BLOCK}.retracted", fork + 1),
        (f"{LOG}.retracted", fork), (f"{BLOCK}.retracted", fork),
    ]
    assert [e["data"]["blockHash"] for e in retractions if e["type"] != f"{LOG}.retracted"] == \
        old_hashes[::-1]
    for retraction in retractions:  # each names a final event that was published
        assert old_finals[retraction["faasflowretracts"]]["faasflowblockhash"] == \
            retraction["faasflowblockhash"]
    new = after[len(retractions):]
    assert after[:len(retractions)] == retractions  # retractions first, then the new chain
    assert [(e["type"], e["faasflowblocknumber"]) for e in new] == [
        (LOG, str(fork)), (BLOCK, str(fork)), (BLOCK, str(fork + 1)), (BLOCK, str(fork + 2)),
    ]
    assert bytes.fromhex(new[0]["data"]["data"][2:]) == b"new chain"
    assert [e["faasflowblockhash"] for e in new[1:]] == [
        ganache.block_hash(n) for n in range(fork, fork + 3)]


def test_a_killed_worker_resumes_with_no_gap_and_no_duplicate(
    kafka: KafkaContainer, platform: Platform, ganache: Ganache, pinger: str, unique: str
) -> None:
    start = ganache.head + 1
    add_connector(platform, unique, url=ganache.ws_url, confirmations=2, addresses=[pinger],
                  start_block=start, poll_interval_s=0.1)
    topic = f"{platform.prefix}.events.{unique}"
    stop = threading.Event()
    pings: list[int] = []

    def keep_mining() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            if count % 3 == 0:
                pings.append(ganache.ping(pinger, count.to_bytes(2, "big"))[0])
            else:
                ganache.mine(1)
            time.sleep(0.05)

    miner = threading.Thread(target=keep_mining, daemon=True)
    miner.start()
    try:
        finalized_up_to(kafka, topic, start + 5)
        platform.kill_worker()
        time.sleep(1.0)  # blocks keep coming while no worker runs
        platform.start_worker()
        killed_at = ganache.head
        finalized_up_to(kafka, topic, killed_at + 3, timeout_s=60)
    finally:
        stop.set()
        miner.join(10)
    head = ganache.head
    events = finalized_up_to(kafka, topic, head - 2)

    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event was published twice"
    finals = final_blocks(events)
    assert [n for n, _ in finals] == list(range(start, finals[-1][0] + 1))
    assert finals[-1][0] >= head - 2
    assert all(h == ganache.block_hash(n) for n, h in finals)
    logged = [int(e["faasflowblocknumber"]) for e in events if e["type"] == LOG]
    assert logged == [n for n in pings if n <= finals[-1][0]]
    assert [e for e in events if status(e) != "final"] == []


def connector_state(platform: Platform, name: str, state: str) -> Any:
    def check() -> Any:
        shown = platform.api.get(f"/v1/connectors/{name}").json()
        return shown if shown["state"] == state else None

    return wait_for(check, what=f"for connector {name} to be {state}")


def test_another_chain_behind_the_url_fails_the_connector_until_it_is_redefined(
    kafka: KafkaContainer, platform: Platform, ganache: Ganache, other_chain: Ganache,
    unique: str
) -> None:
    start = ganache.head + 1
    add_connector(platform, unique, url=ganache.http_url, confirmations=1, start_block=start,
                  poll_interval_s=0.1)
    topic = f"{platform.prefix}.events.{unique}"
    ganache.mine(2)
    finalized_up_to(kafka, topic, start)
    assert connector_state(platform, unique, "running")["error"] is None
    assert platform.api.delete(f"/v1/connectors/{unique}").status_code == 204

    add_connector(platform, unique, url=other_chain.http_url, confirmations=1,
                  start_block=start, poll_interval_s=0.1)  # its checkpoint is of chain 1337
    failed = connector_state(platform, unique, "failed")
    assert failed["error"].startswith("WrongChain: ")
    assert "1338" in failed["error"]
    assert f"connector {unique} failed: WrongChain" in platform.log("worker")
    time.sleep(2.0)
    assert platform.log("worker").count(f"connector {unique} failed") == 1  # not restarted

    assert platform.api.delete(f"/v1/connectors/{unique}").status_code == 204
    add_connector(platform, unique, url=ganache.http_url, confirmations=1, start_block=start,
                  poll_interval_s=0.1)
    connector_state(platform, unique, "running")
    ganache.mine(2)
    events = finalized_up_to(kafka, topic, start + 2)
    finals = [n for n, _ in final_blocks(events)]
    assert finals == list(range(start, finals[-1] + 1))  # resumed where it stopped
