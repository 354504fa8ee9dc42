"""Fn's function contract (``pipeline.runtime.fn``): the environment an FDK is started with,
the headers of a call, how its reply is judged, and its symlinked socket adopted at
hand-back."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.records import Failure, Status
from pipeline.runtime import fn
from pipeline.runtime.sockets import hand_back
from pipeline.specs import Contract, FunctionSpec, Mode

FUNCTION = FunctionSpec(name="hello", image="i", image_digest="sha256:1", mode=Mode.WARM,
                        contract=Contract.FN, timeout_s=30, memory_mb=256)
NOW = datetime(2026, 12, 2, 11, 40, 0, 123456, tzinfo=UTC)


def test_the_contract_survives_the_registry_record() -> None:
    assert FunctionSpec.from_dict(FUNCTION.to_dict()).contract is Contract.FN
    old = {k: v for k, v in FUNCTION.to_dict().items() if k != "contract"}
    assert FunctionSpec.from_dict(old).contract is Contract.FAASFLOW


def test_the_environment_names_the_listener_and_the_fn_names() -> None:
    deployed = replace(FUNCTION, annotations={"fn.app_name": "shop", "fn.fn_id": "01ABC"})

    env = fn.environment(deployed, "/run/faasflow/runtime.sock")

    assert env == {"FN_FORMAT": "http-stream", "FN_LISTENER": "unix:/run/faasflow/runtime.sock",
                   "FN_MEMORY": "256", "FN_TYPE": "sync", "FN_FN_NAME": "hello",
                   "FN_APP_NAME": "shop", "FN_FN_ID": "01ABC"}


def test_a_call_carries_fn_headers_and_the_event_as_request_headers() -> None:
    headers = fn.call_headers(FUNCTION, "inv-1", "application/json",
                              {"CE_ID": "e-1", "CE_SOURCE": "orders", "PATH": "/bin"}, NOW)

    assert headers == {
        "Fn-Call-Id": "inv-1", "Fn-Deadline": "2026-12-02T11:40:30.123Z",
        "Fn-Intent": "httprequest", "Fn-Http-Method": "POST",
        "Fn-Http-Request-Url": "/function/hello", "Content-Type": "application/json",
        "Fn-Http-H-Content-Type": "application/json", "Fn-Http-H-Ce-Id": "e-1",
        "Fn-Http-H-Ce-Source": "orders"}


def test_a_recorded_http_request_becomes_the_fdks_request() -> None:
    env = {"Http_Method": "PUT", "Http_Path": "/items/7", "Http_Query": "a=1",
           "Http_ContentType": "text/plain", "Http_X_Trace": "t-1", "Http_Bad:Name": "x"}

    headers = fn.call_headers(FUNCTION, "inv-1", None, env, NOW)

    assert headers["Fn-Http-Method"] == "PUT"
    assert headers["Fn-Http-Request-Url"] == "/function/hello/items/7?a=1"
    assert headers["Fn-Http-H-X-Trace"] == "t-1"
    assert headers["Content-Type"] == "application/octet-stream"
    assert not [name for name in headers if "Bad" in name or "Contenttype" in name]


def test_header_values_cannot_break_the_request_line() -> None:
    headers = fn.call_headers(FUNCTION, "inv-1", "text/plain\r\nX-Evil: 1",
                              {"CE_SUBJECT": "naïve\nsubject"}, NOW)

    assert headers["Content-Type"] == "text/plain  X-Evil: 1"
    assert headers["Fn-Http-H-Ce-Subject"].encode("latin-1").decode() == "naïve subject"


@pytest.mark.parametrize(("status", "headers", "body", "expected"), [
    (200, {"fn-http-status": "201", "fn-http-h-x-trick": "yes",
           "content-type": "application/json"}, b'{"a": 1}',
     fn.Answer(Status.SUCCEEDED, b'{"a": 1}', http_status=201,
               headers={"x-trick": "yes", "content-type": "application/json"})),
    (200, {}, b"ok", fn.Answer(Status.SUCCEEDED, b"ok", headers={})),
    (200, {"fn-http-status": "418"}, b"teapot",
     fn.Answer(Status.FAILED, failure=Failure.ERROR, http_status=418, headers={},
               error="the function answered HTTP 418: teapot")),
    (200, {"fn-http-status": "x"}, b"",
     fn.Answer(Status.FAILED, failure=Failure.ERROR, headers={},
               error="the FDK answered a malformed Fn-Http-Status: 'x'")),
    (502, {}, b"boom",
     fn.Answer(Status.FAILED, failure=Failure.ERROR, http_status=502, headers={},
               error="the function failed: boom")),
    (504, {}, b"",
     fn.Answer(Status.TIMEOUT, failure=Failure.TIMEOUT, http_status=504, headers={},
               error="the function gave up at its deadline: HTTP 504")),
    (404, {}, b"Not Found",
     fn.Answer(Status.FAILED, failure=Failure.ERROR, http_status=404, headers={},
               error="the FDK answered HTTP 404: Not Found")),
])
def test_a_reply_is_judged_as_warm_runtimes_are(status: int, headers: dict[str, str],
                                                 body: bytes, expected: fn.Answer) -> None:
    assert fn.answer(status, headers, body) == expected


def fdk_directory(tmp_path: Path, target: str) -> tuple[Path, socket.socket]:
    """A container's directory as an FDK leaves it: a socket, and the link to it."""
    directory = tmp_path / "c"
    directory.mkdir()
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(directory / "phonyruntime.sock"))
    listening.listen(1)
    os.symlink(target, directory / "runtime.sock")
    return directory, listening


def test_the_fdks_socket_replaces_its_link_at_hand_back(tmp_path: Path) -> None:
    directory, listening = fdk_directory(tmp_path, "phonyruntime.sock")
    try:
        assert hand_back(directory, adopt_link=True)
        assert os.listdir(directory) == ["runtime.sock"]
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(directory / "runtime.sock"))  # the FDK's listener still
    finally:
        listening.close()


@pytest.mark.parametrize("target", ["/var/run/docker.sock", "../c/phonyruntime.sock",
                                    "runtime.sock", "missing.sock"])
def test_a_link_anywhere_else_is_refused(tmp_path: Path, target: str) -> None:
    directory, listening = fdk_directory(tmp_path, target)
    try:
        assert not hand_back(directory, adopt_link=True)
    finally:
        listening.close()


def test_without_adopting_a_link_is_refused(tmp_path: Path) -> None:
    directory, listening = fdk_directory(tmp_path, "phonyruntime.sock")
    try:
        assert not hand_back(directory)
    finally:
        listening.close()
