"""The port to an Ethereum node: what the connector asks of it, and the errors it may raise.

    FaasflowError
    ├── RetryableError
    │   ├── NodeUnavailable   the node did not answer, answered with an error, or hung up
    │   └── ChainMoved        the chain changed under a read (a block vanished, a range came
    │                         back from two forks): read again
    └── PermanentError
        ├── WrongChain        the endpoint serves another chain than the checkpoint's
        └── NodeRefused       the node refuses a request as configured: the URL or its key
                              (HTTP 401, 403, 404, 405), a method it does not offer
                              (JSON-RPC -32601: eth_subscribe over a node without it), or
                              parameters (-32602: a log range larger than it serves)

The adapter over web3.py (``web3node``) maps its libraries' exceptions into these; tests
use an in-memory node behind the same protocol.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from connectors.ethereum.chain import Block, Log
from pipeline.errors import PermanentError, RetryableError


class NodeUnavailable(RetryableError):
    code = "node_unavailable"


class ChainMoved(RetryableError):
    code = "chain_moved"


class WrongChain(PermanentError):
    code = "wrong_chain"


class NodeRefused(PermanentError):
    code = "node_refused"


class Node(Protocol):
    async def chain_id(self) -> int: ...

    async def head(self) -> Block:
        """The latest block (without logs)."""
        ...

    async def blocks(self, first: int, last: int) -> list[Block]:
        """Blocks ``first``..``last`` by number, as the node sees them now (without logs);
        ``ChainMoved`` when one of them does not exist (the chain got shorter)."""
        ...

    async def block_by_hash(self, block_hash: str) -> Block:
        """``ChainMoved`` when the node no longer knows the block."""
        ...

    async def logs(self, first: int, last: int, addresses: Sequence[str],
                   topics: Sequence[str]) -> list[Log]:
        """The logs of blocks ``first``..``last`` from any of ``addresses`` (all when empty)
        whose first topic is any of ``topics`` (any when empty), in chain order."""
        ...

    def heads(self) -> AsyncGenerator[Block, None]:
        """The head now, then each new head as the node announces it (subscription) or as
        polling finds it. Heads may be skipped or repeated; the caller catches up."""
        ...
