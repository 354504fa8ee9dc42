"""Warm and cold are one function: the same table of bodies and content types goes through a
real warm pool and a real cold container of the same image, for the Python and the Node
runtime, and the handler must have seen the same value — and answered the same bytes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline.execution import execute
from pipeline.records import Event, Invocation, Status
from pipeline.registry import Registry
from pipeline.runtime.runtimes import Runtimes
from pipeline.runtime.shim import decode_input, encode_output
from pipeline.settings import Settings
from pipeline.specs import FunctionSpec, Mode
from tests.integration.runtime_support import build_function_image, build_runtime_images

pytestmark = pytest.mark.integration

ECHO = {"python": "def main(event, context):\n    return [event]\n",
        "node": "module.exports.main = (event) => [event];\n"}
BODIES = [
    '{"name": "Ada", "city": "Zürich"}'.encode(),
    b" [1, 2.5, -0, 1E2, true, null] ",
    b"42",
    b'"quoted"',
    b"plain text",
    b"",
    b"NaN",
    b"[1e400]",
    b"1" * 400,
    b'"\\ud800"',
    b'"\\ud83d\\ude00"',
    b"\xef\xbb\xbf{}",
    b"\xff\x00 not UTF-8",
    b"[" * 256 + b"]" * 256,
    b"[" * 257 + b"]" * 257,
    b"[" * 100_000,
]
CONTENT_TYPES = [None, "text/json", "application/cloudevents+json; charset=utf-8",
                 "text/plain"]
CASES = [(body, content_type) for body in BODIES for content_type in CONTENT_TYPES]
AT_ONCE = 4  # cold runs in flight


@pytest.fixture(scope="module")
def runtime_images() -> dict[str, str]:
    return build_runtime_images()


@pytest.fixture
async def runtimes() -> AsyncIterator[Runtimes]:
    running = Runtimes(Settings())
    await running.start(Registry())
    yield running
    await running.close()


async def outputs(runtimes: Runtimes, function: FunctionSpec) -> list[bytes]:
    """The function's output for every case, each as a fresh event."""
    limit = asyncio.Semaphore(AT_ONCE if function.mode is Mode.COLD else 1)

    async def one(body: bytes, content_type: str | None) -> bytes:
        event = Event(id=uuid.uuid4().hex, source="parity", type="test", data=body,
                      datacontenttype=content_type)
        invocation = Invocation(id=uuid.uuid4().hex, function=function.name, event=event,
                                source="parity")
        async with limit:
            result = await execute(invocation, function, runtimes)
        assert result.status is Status.SUCCEEDED, (body[:40], content_type, result.error)
        return result.output

    return list(await asyncio.gather(*(one(body, ct) for body, ct in CASES)))


@pytest.mark.parametrize("lang", ["python", "node"])
async def test_warm_and_cold_see_the_same_event_and_answer_the_same_bytes(
        runtimes: Runtimes, runtime_images: dict[str, str], tmp_path: Path, lang: str) -> None:
    name = f"parity-{lang}-{uuid.uuid4().hex[:6]}"
    tag = f"faasflow-test/{name}:latest"
    image = build_function_image(runtime_images[lang], lang, ECHO[lang], tmp_path / name, tag)
    cold = FunctionSpec(name=name, image=tag, image_digest=image, timeout_s=20)
    warm = FunctionSpec(name=name, image=tag, image_digest=image, timeout_s=20,
                        mode=Mode.WARM, max_concurrency=1)
    try:
        warm_outputs = await outputs(runtimes, warm)
        cold_outputs = await outputs(runtimes, cold)
    finally:
        await asyncio.to_thread(_remove_image, tag)

    for (body, content_type), warm_output, cold_output in zip(
            CASES, warm_outputs, cold_outputs, strict=True):
        case = (body[:40], content_type)
        assert warm_output == cold_output, case
        expected = decode_input(body, content_type)
        if lang == "python":  # the one decoder and the one encoder, byte for byte
            assert warm_output == encode_output([expected]), case
        else:  # Node writes numbers its own way; what it decided must be the same
            seen = json.loads(warm_output)[0]
            assert isinstance(seen, str) == isinstance(expected, str), case
            assert isinstance(seen, dict) == isinstance(expected, dict), case
    greeting = CASES.index((BODIES[0], None))
    assert warm_outputs[greeting] == '[{"name":"Ada","city":"Zürich"}]'.encode()


def _remove_image(tag: str) -> None:
    import docker

    client = docker.from_env()
    try:
        client.images.remove(tag, force=True)
    finally:
        client.close()
