"""Clients that hold connections without finishing requests: idle, half a request line, a
body at a byte a second, thousands of idle sockets. Real sockets against a real gateway."""

from __future__ import annotations

import resource
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import KafkaContainer, free_port
from tests.integration.platform import REPO, TOKEN, Platform

HEADER_TIMEOUT_S = 2.0
BODY_GRACE_S = 2.0
BODY_MIN_RATE = 1024
SLACK_S = 4.0  # scheduling on a busy machine; the timers tick once a second
FD_LIMIT = 2048  # the gateway's RLIMIT_NOFILE (hard) in the descriptor tests
FD_SOFT_LIMIT = 1024  # ... and the soft limit it starts with


class LimitedPlatform(Platform):
    """A gateway process started with few file descriptors (``FD_SOFT_LIMIT``, at most
    ``FD_LIMIT``)."""

    def _spawn(self, role: str) -> subprocess.Popen[bytes]:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_SOFT_LIMIT, FD_LIMIT))

        with (self.state_dir / f"{role}.log").open("ab") as log:
            return subprocess.Popen([sys.executable, "-m", "pipeline", role], env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                    preexec_fn=limit)


def start(platform: Platform, **env: str) -> Platform:
    platform.env.update({f"FAASFLOW_GATEWAY_{k.upper()}": v for k, v in env.items()})
    platform.start_gateway()
    return platform


@pytest.fixture(scope="module")
def strict(kafka: KafkaContainer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A gateway with short timeouts, so that the tests of them are short."""
    running = start(Platform(kafka.bootstrap, f"c{uuid.uuid4().hex[:10]}", free_port(),
                             tmp_path_factory.mktemp("connections")),
                    header_timeout_s=str(HEADER_TIMEOUT_S), body_grace_s=str(BODY_GRACE_S),
                    body_min_rate=str(BODY_MIN_RATE))
    yield running
    running.stop()


def connect(platform: Platform) -> socket.socket:
    host, port = platform.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_until_closed(sock: socket.socket, within_s: float) -> bytes:
    """Everything the gateway sends until it closes the connection; fails the test if it
    keeps the connection open longer than ``within_s``."""
    deadline = time.monotonic() + within_s
    received = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"connection still open after {within_s:.0f} s: got {received[:200]!r}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            continue
        if not chunk:
            return received
        received += chunk


def closed(platform: Platform, reason: str) -> int:
    """Connections the gateway says it closed for ``reason`` (its metrics, read on a
    connection of its own, which the gateway does not keep)."""
    metrics = httpx.get(f"{platform.url}/metrics", headers={
        "Connection": "close", "Authorization": f"Bearer {TOKEN}"}).text
    for line in metrics.splitlines():
        if line.startswith(f'faasflow_http_connections_closed_total{{reason="{reason}"}}'):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer (head and a ``Content-Length`` body) on a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed(strict: Platform) -> None:
    before = closed(strict, "idle")
    with connect(strict) as sock:
        assert read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S) == b""
    assert closed(strict, "idle") > before  # (the platform's own pooled connection, too)


def test_half_a_request_head_is_answered_408_and_closed(strict: Platform) -> None:
    before = closed(strict, "head_late")
    with connect(strict) as sock:
        sock.sendall(b"POST /hooks/wh_x HTTP/1.1\r\nHost: gateway\r\nContent-Le")
        answer = read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"code":"request_timeout"' in answer
    assert closed(strict, "head_late") == before + 1


def test_the_header_timeout_holds_again_after_an_answer(strict: Platform) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        first = read_answer(sock)
        assert first.startswith(b"HTTP/1.1 200 "), first
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gat")  # keep-alive, then half a head
        answer = read_until_closed(sock, HEADER_TIMEOUT_S + SLACK_S)
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_body_at_one_byte_a_second_is_cut(strict: Platform, unique: str) -> None:
    hook = strict.webhook("slow", unique)
    before = closed(strict, "body_slow")
    with connect(strict) as sock:
        sock.sendall(f"POST {hook['url']} HTTP/1.1\r\nHost: gateway\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n".encode())
        deadline = time.monotonic() + BODY_GRACE_S + SLACK_S + 2
        answer = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:
                answer = read_until_closed(sock, SLACK_S)
                break
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail("a body at 1 byte/s was still being read")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer
    time.sleep(0.5)  # the application sees the disconnect after the connection is closed
    assert "Traceback" not in strict.log("gateway")  # a client cut off is not a bug
    assert closed(strict, "body_slow") == before + 1


def test_a_slow_but_fair_upload_is_received(strict: Platform, unique: str) -> None:
    hook = strict.webhook("fair", unique)
    chunk, chunks, rate = 1024, 24, 8 * BODY_MIN_RATE  # 3 s, longer than the grace

    def trickle() -> Iterator[bytes]:
        for _ in range(chunks):
            time.sleep(chunk / rate)
            yield b"y" * chunk

    response = strict.anonymous.post(hook["url"], content=trickle(),
                                     headers={"Content-Type": "text/plain"})
    assert response.status_code == 202, response.text


@pytest.fixture(scope="module")
def few_descriptors(kafka: KafkaContainer,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start(LimitedPlatform(kafka.bootstrap, f"d{uuid.uuid4().hex[:10]}", free_port(),
                                    tmp_path_factory.mktemp("descriptors")))
    yield running
    running.stop()


def test_idle_connections_beyond_the_descriptors_do_not_stop_a_request(
    few_descriptors: Platform,
) -> None:
    # Finding: idle connections were held forever, and past the file descriptor limit the
    # gateway could accept nothing (nor open anything else).
    idle = [connect(few_descriptors) for _ in range(FD_LIMIT + 100)]
    try:
        response = httpx.get(f"{few_descriptors.url}/healthz", timeout=10)  # a new connection
        assert response.status_code == 200
        still_open = 0
        for sock in idle:
            sock.setblocking(False)
            try:
                still_open += sock.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except ConnectionResetError:
                pass
        assert still_open < FD_LIMIT
        assert closed(few_descriptors, "evicted") >= len(idle) - still_open
        assert "Too many open files" not in few_descriptors.log("gateway")
    finally:
        for sock in idle:
            sock.close()


def test_the_descriptor_limit_is_raised_to_the_hard_limit(few_descriptors: Platform) -> None:
    assert few_descriptors.gateway is not None
    limits = Path(f"/proc/{few_descriptors.gateway.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max open files"))
    assert line.split()[3:5] == [str(FD_LIMIT), str(FD_LIMIT)]
