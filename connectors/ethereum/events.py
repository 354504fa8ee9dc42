"""Chain changes as CloudEvents, and back (to replay what was published before a crash).

    type                                      faasflowstatus       subject
    dev.faasflow.ethereum.block               pending | final      block number
    dev.faasflow.ethereum.log                 pending | final      contract address
    dev.faasflow.ethereum.block.retracted     retracted            block number
    dev.faasflow.ethereum.log.retracted       retracted            contract address

Ids are uuid5 over (source, chain id, block hash, [log index,] kind, status): the same
change published twice is one event downstream. A retraction names the event it takes back
in ``faasflowretracts`` and carries the block's or the log's identity, not its payload.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from connectors.ethereum.chain import Block, Change, Log, Status
from pipeline.records import Event, dumps, strict_loads, utc_now

BLOCK_TYPE = "dev.faasflow.ethereum.block"
LOG_TYPE = "dev.faasflow.ethereum.log"
BLOCK_RETRACTED_TYPE = f"{BLOCK_TYPE}.retracted"
LOG_RETRACTED_TYPE = f"{LOG_TYPE}.retracted"
TYPES = (BLOCK_TYPE, LOG_TYPE, BLOCK_RETRACTED_TYPE, LOG_RETRACTED_TYPE)

STATUS = "faasflowstatus"
CHAIN_ID = "faasflowchainid"
BLOCK_NUMBER = "faasflowblocknumber"
BLOCK_HASH = "faasflowblockhash"
LOG_INDEX = "faasflowlogindex"
RETRACTS = "faasflowretracts"

_NAMESPACE = uuid.UUID("5d0f3c1a-9e7b-5b24-8c3d-71a4e2f09b68")


def event_id(source: str, chain_id: int, block_hash: str, log_index: int | None,
             status: Status) -> str:
    kind = "block" if log_index is None else f"log/{log_index}"
    return str(uuid.uuid5(_NAMESPACE, f"{source}/{chain_id}/{block_hash}/{kind}/{status}"))


def to_event(change: Change, source: str, chain_id: int) -> Event:
    block, log = change.block, change.log
    index = None if log is None else log.index
    extensions = {STATUS: change.status.value, CHAIN_ID: str(chain_id),
                  BLOCK_NUMBER: str(block.number), BLOCK_HASH: block.hash}
    if log is not None:
        extensions[LOG_INDEX] = str(log.index)
    if change.status is Status.RETRACTED:
        assert change.retracted is not None
        retracts = event_id(source, chain_id, block.hash, index, change.retracted)
        extensions[RETRACTS] = retracts
        data = _identity(block, log, chain_id) | {"retracts": retracts,
                                                 "retractedStatus": change.retracted.value}
        kind, time = (BLOCK_RETRACTED_TYPE if log is None else LOG_RETRACTED_TYPE), utc_now()
    else:
        data = _block_data(block, chain_id) if log is None else _log_data(log, chain_id)
        kind, time = (BLOCK_TYPE if log is None else LOG_TYPE), _iso(block.timestamp)
    subject = str(block.number) if log is None else log.address
    return Event(id=event_id(source, chain_id, block.hash, index, change.status),
                 source=source, type=kind, subject=subject, time=time,
                 datacontenttype="application/json", data=dumps(data), extensions=extensions)


def from_event(event: Event) -> Change | None:
    """The change an event of ours published; None for anything else."""
    if event.type not in TYPES:
        return None
    data: dict[str, Any] = strict_loads(event.data)
    status = Status(event.extensions[STATUS])
    if event.type == BLOCK_TYPE:
        return Change(status, _block_from(data))
    number, block_hash = int(data["blockNumber"]), str(data["blockHash"])
    if event.type == LOG_TYPE:
        block = Block(number, block_hash, "", 0)
        return Change(status, block, Log(number, block_hash, int(data["logIndex"]),
                                         str(data["address"]), tuple(data["topics"]),
                                         str(data["data"]), str(data["transactionHash"])))
    retracted = Status(data["retractedStatus"])
    if event.type == BLOCK_RETRACTED_TYPE:
        return Change(status, Block(number, block_hash, "", 0), None, retracted)
    log = Log(number, block_hash, int(data["logIndex"]), str(data["address"]))
    return Change(status, Block(number, block_hash, "", 0), log, retracted)


def _block_data(block: Block, chain_id: int) -> dict[str, Any]:
    return {"chainId": chain_id, "number": block.number, "hash": block.hash,
            "parentHash": block.parent_hash, "timestamp": block.timestamp}


def _log_data(log: Log, chain_id: int) -> dict[str, Any]:
    return {"chainId": chain_id, "address": log.address, "topics": list(log.topics),
            "data": log.data, "transactionHash": log.transaction_hash,
            "logIndex": log.index, "blockNumber": log.block_number, "blockHash": log.block_hash}


def _identity(block: Block, log: Log | None, chain_id: int) -> dict[str, Any]:
    identity: dict[str, Any] = {"chainId": chain_id, "blockNumber": block.number,
                                "blockHash": block.hash}
    if log is not None:
        identity |= {"address": log.address, "logIndex": log.index}
    return identity


def _block_from(data: dict[str, Any]) -> Block:
    return Block(int(data["number"]), str(data["hash"]), str(data["parentHash"]),
                 int(data["timestamp"]))


def _iso(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
