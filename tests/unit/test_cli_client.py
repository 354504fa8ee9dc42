"""The CLI's gateway client against a real HTTP server on the loopback: what it sends, and
how answers and silences become results or GatewayErrors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline.cli.client import Gateway, GatewayError

TOKEN = "t" * 32


class Handler(BaseHTTPRequestHandler):
    """Answers as told by the path: /echo returns what it got, /error/CODE an API error,
    /slow nothing for a while."""

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def answer(self) -> None:
        if self.path == "/slow":
            time.sleep(1.0)  # and no answer: the client has given up
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith(("/error/", "/function/error")):
            status = 422 if self.path.startswith("/error/") else 500
            self.reply(status, {"error": {"message": "bad input", "fields": [
                {"field": "name", "message": "too long"}]}})
            return
        self.reply(200, {"method": self.command, "path": self.path,
                         "authorization": self.headers.get("Authorization"),
                         "content_type": self.headers.get("Content-Type"),
                         "body": body.decode()})

    def reply(self, status: int, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Call-Id", "call-1")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sends_the_token_params_and_json(url: str) -> None:
    got = Gateway(url, TOKEN).json("POST", "/echo", params={"event_id": "e 1", "wait": 2.5},
                                   json={"name": "é"})

    assert got == {"method": "POST", "path": "/echo?event_id=e+1&wait=2.5",
                   "authorization": f"Bearer {TOKEN}", "content_type": "application/json",
                   "body": '{"name":"é"}'}


def test_without_a_token_sends_no_authorization(url: str) -> None:
    assert Gateway(url, None).json("GET", "/echo")["authorization"] is None


def test_an_api_error_is_a_gateway_error_with_its_message(url: str) -> None:
    with pytest.raises(GatewayError, match=r"bad input \(HTTP 422\)\n  name: too long"):
        Gateway(url, TOKEN).json("GET", "/error/x")


def test_a_function_error_is_an_answer(url: str) -> None:
    response = Gateway(url, TOKEN).request("POST", "/function/error", content=b"x",
                                           headers={"Content-Type": "text/plain"})

    assert (response.status_code, response.is_success) == (500, False)
    assert response.headers.get("x-call-id") == "call-1"
    assert response.json()["error"]["message"] == "bad input"


def test_silence_past_the_timeout_is_a_gateway_error(url: str) -> None:
    with pytest.raises(GatewayError, match=r"no gateway answers at .*timed out"):
        Gateway(url, TOKEN, timeout_s=0.2).json("GET", "/slow")
