from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from pipeline.gateway.limits import BodyLimit, BodyTooLarge

LIMIT = 10


class ReadingApp:
    """An ASGI app that reads its whole body, then answers 200 with the body's length."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.called = True
        more = True
        while more:
            message = await receive()
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(self.body)).encode()})


class Client:
    """Hand-made ``receive`` and ``send``: the body in chunks, the response collected."""

    def __init__(self, *chunks: bytes) -> None:
        self.messages: list[Message] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        self.reads = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.reads += 1
        return self.messages.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status

    @property
    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def http_scope(content_length: int | None = None) -> Scope:
    headers = [(b"content-type", b"application/octet-stream")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {"type": "http", "method": "POST", "path": "/hooks/wh_1", "headers": headers}


async def test_declared_length_over_the_limit_is_refused_unread() -> None:
    app, client = ReadingApp(), Client(b"x" * (LIMIT + 1))

    await BodyLimit(app, LIMIT)(http_scope(LIMIT + 1), client.receive, client.send)

    assert not app.called
    assert client.reads == 0
    assert client.status == 413
    assert dict(client.sent[0]["headers"])[b"content-type"] == b"application/json"
    assert client.json["error"]["code"] == "payload_too_large"
    assert str(LIMIT) in client.json["error"]["message"]


async def test_streamed_body_passing_the_limit_stops_the_read() -> None:
    app, client = ReadingApp(), Client(b"x" * 6, b"x" * 6, b"x" * 6)

    with pytest.raises(BodyTooLarge) as raised:
        await BodyLimit(app, LIMIT)(http_scope(), client.receive, client.send)

    assert raised.value.status_code == 413
    assert client.reads == 2
    assert client.sent == []


async def test_understated_content_length_is_caught_while_streaming() -> None:
    app, client = ReadingApp(), Client(b"x" * 8, b"x" * 8)

    with pytest.raises(BodyTooLarge):
        await BodyLimit(app, LIMIT)(http_scope(content_length=4), client.receive, client.send)


async def test_body_at_the_limit_passes_through() -> None:
    app, client = ReadingApp(), Client(b"x" * 4, b"y" * 6)

    await BodyLimit(app, LIMIT)(http_scope(LIMIT), client.receive, client.send)

    assert app.body == b"xxxxyyyyyy"
    assert client.status == 200
    assert client.sent[1]["body"] == b"10"


async def test_non_http_scopes_pass_through_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def never(*_: Any) -> Any:
        raise AssertionError("not called")

    await BodyLimit(app, LIMIT)({"type": "lifespan"}, never, never)

    assert seen == ["lifespan"]
