"""The ``Node`` port over web3.py: AsyncWeb3 with the HTTP provider (heads by polling) or the
websocket provider (heads by ``eth_subscribe('newHeads')``). The only module that imports
web3, aiohttp or websockets; their exceptions become ``NodeUnavailable``, ``ChainMoved`` or
``NodeRefused`` right where the call is made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import aiohttp
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, Web3Exception, Web3RPCError
from web3.providers import AsyncHTTPProvider, WebSocketProvider
from websockets.exceptions import InvalidStatus, WebSocketException

from connectors.ethereum.chain import Block, Log
from connectors.ethereum.config import EthereumConfig
from connectors.ethereum.node import ChainMoved, NodeRefused, NodeUnavailable

REQUEST_TIMEOUT_S = 30.0
REFUSED_STATUSES = frozenset({401, 403, 404, 405})  # the URL, or the key in it, is wrong
REFUSED_RPC_CODES = frozenset({-32601, -32602})  # method not found, invalid params


@contextmanager
def rpc_errors(what: str) -> Iterator[None]:
    try:
        yield
    except BlockNotFound as exc:
        raise ChainMoved(f"{what}: {exc}") from exc
    except (Web3Exception, aiohttp.ClientError, WebSocketException, OSError) as exc:
        if refused(exc):
            raise NodeRefused(f"{what}: the node refused it: {type(exc).__name__}: {exc}"
                              ) from exc
        raise NodeUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


def refused(exc: BaseException) -> bool:
    """Whether the node refused the request as configured (asking again cannot help), as
    opposed to failing to answer it (rate limits, timeouts, server errors)."""
    if isinstance(exc, Web3RPCError):
        error = (exc.rpc_response or {}).get("error")
        return isinstance(error, Mapping) and error.get("code") in REFUSED_RPC_CODES
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in REFUSED_STATUSES
    if isinstance(exc, InvalidStatus):
        return exc.response.status_code in REFUSED_STATUSES
    cause = exc.__cause__  # web3 wraps a failed websocket handshake
    return isinstance(cause, InvalidStatus) and refused(cause)


@asynccontextmanager
async def connect(config: EthereumConfig) -> AsyncIterator[Web3Node]:
    """A node for ``config.url``: connected (websocket) or ready to request (HTTP)."""
    if config.subscribes:
        provider: Any = WebSocketProvider(config.url, request_timeout=REQUEST_TIMEOUT_S,
                                          max_connection_retries=1)
        with rpc_errors(f"connecting to {config.url}"):
            await provider.connect()
    else:
        # no retries inside web3: the connector retries, with its one backoff policy
        provider = AsyncHTTPProvider(config.url, request_kwargs={"timeout": REQUEST_TIMEOUT_S},
                                     exception_retry_configuration=None)
    try:
        yield Web3Node(AsyncWeb3(provider), config)
    finally:
        with suppress(Exception):  # closing a connection that already broke
            await provider.disconnect()


class Web3Node:
    def __init__(self, w3: AsyncWeb3[Any], config: EthereumConfig) -> None:
        self._w3 = w3
        self._config = config

    async def chain_id(self) -> int:
        with rpc_errors("eth_chainId"):
            return int(await self._w3.eth.chain_id)

    async def head(self) -> Block:
        with rpc_errors("eth_getBlockByNumber(latest)"):
            return _block(await self._w3.eth.get_block("latest"))

    async def blocks(self, first: int, last: int) -> list[Block]:
        if first > last:
            return []
        with rpc_errors(f"eth_getBlockByNumber({first}..{last})"):
            if first == last:
                return [_block(await self._w3.eth.get_block(first))]
            async with self._w3.batch_requests() as batch:
                for number in range(first, last + 1):
                    batch.add(self._w3.eth.get_block(number))
                found = await batch.async_execute()
        blocks = [_block(b) for b in found]
        if [b.number for b in blocks] != list(range(first, last + 1)):
            raise ChainMoved(f"blocks {first}..{last}: the node answered other heights")
        return blocks

    async def block_by_hash(self, block_hash: str) -> Block:
        with rpc_errors(f"eth_getBlockByHash({block_hash})"):
            return _block(await self._w3.eth.get_block(block_hash))  # type: ignore[arg-type]

    async def logs(self, first: int, last: int, addresses: Sequence[str],
                   topics: Sequence[str]) -> list[Log]:
        query: dict[str, Any] = {"fromBlock": first, "toBlock": last}
        if addresses:
            query["address"] = list(addresses)
        if topics:
            query["topics"] = [list(topics)]
        with rpc_errors(f"eth_getLogs({first}..{last})"):
            found = await self._w3.eth.get_logs(query)  # type: ignore[arg-type]
        return [_log(entry) for entry in found if not entry.get("removed")]

    async def heads(self) -> AsyncGenerator[Block, None]:
        if not self._config.subscribes:
            while True:
                yield await self.head()
                await asyncio.sleep(self._config.poll_interval_s)
        # subscribed before the first head is read, so no block falls between the two
        with rpc_errors("eth_subscribe(newHeads)"):
            await self._w3.eth.subscribe("newHeads")
            stream = self._w3.socket.process_subscriptions().__aiter__()
        yield await self.head()
        while True:
            with rpc_errors("newHeads subscription"):
                try:
                    message = await stream.__anext__()
                except StopAsyncIteration:
                    raise NodeUnavailable("the newHeads subscription ended") from None
            yield _block(message["result"])


def _hex(value: Any) -> str:
    return value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value).lower()


def _block(data: Mapping[str, Any]) -> Block:
    return Block(number=int(data["number"]), hash=_hex(data["hash"]),
                 parent_hash=_hex(data["parentHash"]), timestamp=int(data["timestamp"]))


def _log(data: Mapping[str, Any]) -> Log:
    return Log(block_number=int(data["blockNumber"]), block_hash=_hex(data["blockHash"]),
               index=int(data["logIndex"]), address=str(data["address"]),
               topics=tuple(_hex(t) for t in data["topics"]), data=_hex(data["data"]),
               transaction_hash=_hex(data["transactionHash"]))
