"""The web3 adapter's error mapping, against a local HTTP server that answers as a node
would: what the node refuses as configured is permanent, what it fails to answer is not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.ethereum.config import EthereumConfig
from connectors.ethereum.node import NodeRefused, NodeUnavailable
from connectors.ethereum.web3node import connect


class FakeNodeServer:
    """Answers every request with ``status`` and, for JSON-RPC, the error ``code``."""

    def __init__(self) -> None:
        self.status = 200
        self.code = -32000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # as websockets requires of a handshake answer

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                body = json.dumps({"jsonrpc": "2.0", "id": request.get("id"),
                                   "error": {"code": node.code, "message": "refused"}}).encode()
                self.send_response(node.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def node() -> Iterator[FakeNodeServer]:
    served = FakeNodeServer()
    yield served
    served.server.shutdown()
    served.server.server_close()


async def chain_id(url: str) -> int:
    async with connect(EthereumConfig(url=url)) as web3node:
        return await web3node.chain_id()


@pytest.mark.parametrize("code", [-32601, -32602])  # method not found, invalid params
async def test_a_request_the_node_refuses_is_permanent(node: FakeNodeServer, code: int) -> None:
    node.code = code
    with pytest.raises(NodeRefused, match="eth_chainId"):
        await chain_id(node.url())


@pytest.mark.parametrize("code", [-32000, -32005])  # server error, limit exceeded
async def test_a_node_error_is_transient(node: FakeNodeServer, code: int) -> None:
    node.code = code
    with pytest.raises(NodeUnavailable):
        await chain_id(node.url())


@pytest.mark.parametrize(("status", "refused"), [(401, True), (404, True), (429, False),
                                                 (503, False)])
async def test_http_statuses(node: FakeNodeServer, status: int, refused: bool) -> None:
    node.status = status
    with pytest.raises(NodeRefused if refused else NodeUnavailable):
        await chain_id(node.url())


async def test_a_websocket_handshake_refused_is_permanent(node: FakeNodeServer) -> None:
    node.status = 403
    with pytest.raises(NodeRefused):
        await chain_id(node.url("ws"))
