"""The HTTP adapter against a real local server: it connects to the address it checked,
keeps the host name in ``Host``, refuses private addresses unless allowed, and does not
follow redirects."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from pipeline.callbacks.sender import HttpSender
from tests.integration.callback_receiver import receiving


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    made = HttpSender(allow_private=True, timeout_s=5)
    yield made
    await made.close()


async def test_the_request_goes_to_the_checked_address_with_the_name_in_host(
        sender: HttpSender) -> None:
    with receiving(204) as receiver:
        attempt = await sender.post(f"http://localhost:{receiver.port}/in", b'{"a":1}',
                                    {"webhook-id": "msg_1"})
        (post,) = receiver.posts()

    assert attempt.status_code == 204
    assert attempt.ok
    assert post.headers["host"] == f"localhost:{receiver.port}"
    assert post.headers["webhook-id"] == "msg_1"
    assert post.headers["content-type"] == "application/json"
    assert post.body == b'{"a":1}'


async def test_a_private_address_is_refused_at_delivery_and_nothing_is_sent() -> None:
    refusing = HttpSender(allow_private=False, timeout_s=5)
    try:
        with receiving(200) as receiver:
            attempt = await refusing.post(receiver.url(), b"{}", {})
            assert receiver.posts() == []
    finally:
        await refusing.close()

    assert attempt.status_code is None
    assert attempt.error is not None
    assert "loopback" in attempt.error


async def test_a_redirect_is_not_followed(sender: HttpSender) -> None:
    with receiving(307, 200) as receiver:  # 307 keeps the method: a POST to /moved
        attempt = await sender.post(receiver.url(), b"{}", {})
        assert [p.path for p in receiver.posts()] == ["/hook"]

    assert attempt.status_code == 307
    assert not attempt.ok


async def test_a_closed_port_is_an_attempt_with_an_error(sender: HttpSender) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once it is closed

    attempt = await sender.post(f"http://127.0.0.1:{port}/", b"{}", {})

    assert attempt.status_code is None
    assert attempt.error is not None
    assert "ConnectError" in attempt.error
    assert attempt.duration_s >= 0


