"""The Python in-container runtime (functions/runtime/python/runtime.py), in process: its
protocol logic and HTTP parsing without a container. tests/integration/test_runtimes.py runs
it, and the Node one, for real."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

RUNTIME = Path(__file__).parents[2] / "functions" / "runtime" / "python" / "runtime.py"


def load_runtime() -> ModuleType:
    spec = importlib.util.spec_from_file_location("faasflow_runtime", RUNTIME)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rt = load_runtime()


@pytest.fixture(autouse=True)
def isolated() -> Iterator[None]:
    """The runtime owns its process: it sets variables and registers the code's module."""
    environ, modules = dict(os.environ), set(sys.modules)
    yield
    os.environ.clear()
    os.environ.update(environ)
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def initialized(code: str, main: str = "main") -> Any:
    runtime = rt.Runtime()
    assert runtime.init({"value": {"code": code, "main": main}}) == (200, {"ok": True})
    return runtime


def run(runtime: Any, value: Any, logs: bool = False, **extra: Any) -> tuple[int, Any]:
    try:
        status, body = runtime.run({"value": value, **extra}, logs)
    except rt.Failure as failure:
        return failure.status, {"error": failure.message}
    return status, json.loads(body) if isinstance(body, bytes) else body


@pytest.mark.parametrize(("code", "expected"), [
    ("def main(args):\n    return args", {"a": 1}),
    ("def main(event, context):\n    return [event, context.activation_id]", [{"a": 1}, "A"]),
    ("def main():\n    return 'none'", "none"),
    ("def main(*args):\n    return len(args)", 2),
    ("def main(event, context=None, extra=3):\n    return context is not None", True),
    ("async def main(event, context):\n    return event['a'] + 1", 2),
    ("class H:\n    def go(self, event):\n        return event\nmain = H().go", {"a": 1}),
])
def test_handler_gets_as_many_arguments_as_it_takes(code: str, expected: Any) -> None:
    assert run(initialized(code), {"a": 1}, activation_id="A") == (200, expected)


def test_init_twice_is_refused() -> None:
    runtime = initialized("def main(a): return a")

    with pytest.raises(rt.Failure) as caught:
        runtime.init({"value": {"code": "def main(a): return 2"}})
    assert caught.value.status == 403


@pytest.mark.parametrize(("code", "main", "message"), [
    ("def main(:\n", "main", "SyntaxError: invalid syntax (<action>, line 1)"),
    ("def other(a): ...", "main", "the code defines no function 'main'"),
    ("main = 3", "main", "the code defines no function 'main'"),
    ("raise RuntimeError('at load')", "main", "loading the code failed: RuntimeError: at load"),
])
def test_code_that_does_not_load_is_a_502(code: str, main: str, message: str) -> None:
    runtime = rt.Runtime()

    with pytest.raises(rt.Failure) as caught:
        runtime.init({"value": {"code": code, "main": main}})
    assert (caught.value.status, caught.value.message) == (502, message)
    assert runtime.init({"value": {"code": "def main(a): return a"}})[0] == 200  # retry is fine


def test_run_before_init_is_refused() -> None:
    assert run(rt.Runtime(), 1) == (403, {"error": "not initialized: POST /init first"})


def test_logs_are_captured_per_call_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    runtime = initialized("import sys\ndef main(a):\n    print('out', a)\n"
                          "    print('err', file=sys.stderr)\n    return a")

    assert run(runtime, 1, logs=True) == (200, {"output": "1", "logs": "out 1\nerr\n"})
    assert run(runtime, 2, logs=True) == (200, {"output": "2", "logs": "out 2\nerr\n"})
    assert capsys.readouterr() == ("", "")
    assert run(runtime, 3) == (200, 3)
    assert capsys.readouterr() == ("out 3\n", "err\n")  # not asked: the container's own output


def test_logs_are_capped(capsys: pytest.CaptureFixture[str]) -> None:
    runtime = initialized("def main(a):\n    print('é' * 100_000)\n    return 0")

    status, body = run(runtime, None, logs=True)
    assert status == 200
    assert len(body["logs"].encode()) <= rt.LOG_CAP
    assert body["logs"] == "é" * (rt.LOG_CAP // 2)


def test_a_failing_handler_is_a_502_and_the_runtime_stays_usable() -> None:
    runtime = initialized("def main(a):\n    if a == 'boom':\n        raise ValueError('no')\n"
                          "    if a == 'set':\n        return {1}\n"
                          "    if a == 'nan':\n        return float('nan')\n"
                          "    if a == 'exit':\n        raise SystemExit(3)\n    return a")

    status, body = run(runtime, "boom", logs=True)
    assert (status, body["error"]) == (502, "ValueError: no")
    assert 'File "<action>", line 3, in main' in body["logs"]
    assert "raise ValueError('no')" in body["logs"]  # the code's own lines, from linecache
    assert "runtime.py" not in body["logs"]
    assert run(runtime, "set")[1]["error"].startswith("the result is not JSON-serializable")
    assert run(runtime, "nan")[1]["error"].startswith("the result is not JSON-serializable")
    assert run(runtime, "exit") == (502, {"error": "SystemExit: 3"})
    assert run(runtime, "fine") == (200, "fine")


def test_context_carries_the_call() -> None:
    os.environ["FAASFLOW_FUNCTION"] = "resize"
    runtime = initialized(
        "import os\ndef main(e, c):\n    return [c.activation_id, c.deadline, c.function_name,"
        " c.env, c.remaining_ms() > 0, os.environ['__OW_ACTIVATION_ID']]")
    deadline = int(time.time() * 1000) + 60_000

    assert run(runtime, None, activation_id="act", deadline=deadline, env={"CE_ID": "e1"}) == (
        200, ["act", deadline, "resize", {"CE_ID": "e1"}, True, "act"])


def test_init_env_reaches_the_code() -> None:
    runtime = rt.Runtime()
    runtime.init({"value": {"code": "import os\nX = os.environ['X']\ndef main(): return X",
                            "env": {"X": "from init", "N": 3}}})

    assert run(runtime, None) == (200, "from init")
    assert os.environ["N"] == "3"


def test_a_preloaded_runtime_takes_only_env_from_init(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text("import os\ndef handle(event, context):\n    return os.environ.get('Y')")
    runtime = rt.Runtime(rt.CodeHandler.from_file(str(handler), "handle"))

    assert runtime.init({"value": {"code": "def main(): return 'ignored'", "env": {"Y": "y"}}}) \
        == (200, {"ok": True})
    assert run(runtime, None) == (200, "y")
    with pytest.raises(rt.Failure):
        runtime.init({"value": {}})


def test_a_handler_that_failed_to_load_answers_every_run_with_why() -> None:
    runtime = rt.Runtime(None, "SyntaxError: bad (handler.py, line 2)")

    assert run(runtime, 1) == (502, {
        "error": "the handler could not be loaded: SyntaxError: bad (handler.py, line 2)"})


# ---- exec mode ------------------------------------------------------------------------------


def test_exec_passes_text_raw_and_other_json_as_json() -> None:
    runtime = rt.Runtime(rt.ExecHandler(["cat"]))

    assert run(runtime, "plain text\n") == (200, "plain text\n")
    assert run(runtime, {"a": [1, 2]}) == (200, {"a": [1, 2]})
    assert run(runtime, "") == (200, "")


def test_exec_is_byte_for_byte_as_a_cold_container() -> None:
    """The host sends an exec-mode container every body as text or data_base64."""
    runtime = rt.Runtime(rt.ExecHandler(["cat"]))

    assert run(runtime, '{"a":  1}', logs=True) == (200, {"output": '{"a":  1}', "logs": ""})
    assert run(runtime, {"data_base64": "/wA="}, logs=True) == (
        200, {"output_base64": "/wA=", "logs": ""})


def test_exec_failure_carries_stderr() -> None:
    runtime = rt.Runtime(rt.ExecHandler(["sh", "-c", "echo $CE_ID-$FAASFLOW_INVOCATION_ID >&2;"
                                         " exit 4"]))

    status, body = run(runtime, 1, logs=True, activation_id="inv", env={"CE_ID": "ev"})
    assert status == 502
    assert body == {"error": "sh exited with code 4: ev-inv", "logs": "ev-inv\n"}


def test_exec_is_killed_at_the_deadline() -> None:
    runtime = rt.Runtime(rt.ExecHandler(["sleep", "5"]))
    started = time.monotonic()

    status, body = run(runtime, None, deadline=int(time.time() * 1000) + 200)
    assert (status, body) == (502, {"error": "deadline exceeded: the command was killed"})
    assert time.monotonic() - started < 2


def test_exec_output_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "MAX_OUTPUT", 1000)
    runtime = rt.Runtime(rt.ExecHandler(["sh", "-c", "head -c 100000 /dev/zero"]))

    assert run(runtime, None) == (502, {
        "error": "the output exceeded 1000 bytes: the command was killed"})


def test_exec_of_a_missing_command() -> None:
    assert run(rt.Runtime(rt.ExecHandler(["/no/such/thing"])), None) == (
        502, {"error": "cannot run /no/such/thing: No such file or directory"})


# ---- HTTP -----------------------------------------------------------------------------------


def requests_from(raw: bytes) -> tuple[list[Any], list[bytes]]:
    rfile, sent, found = io.BufferedReader(io.BytesIO(raw)), [], []  # type: ignore[arg-type]
    while (request := rt.read_request(rfile, sent.append)) is not None:
        found.append(request)
    return found, sent


def test_keep_alive_requests_follow_each_other() -> None:
    found, _ = requests_from(
        b"POST /run HTTP/1.1\r\nContent-Length: 2\r\nX-Faasflow-Logs: 1\r\n\r\n{}"
        b"GET /health?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n")

    assert found == [("POST", "/run", {"content-length": "2", "x-faasflow-logs": "1"}, b"{}",
                      True), ("GET", "/health", {"connection": "close"}, b"", False)]


def test_chunked_bodies_and_expect_continue() -> None:
    found, sent = requests_from(
        b"POST /run HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        b"4\r\n{\"va\r\n7;ext=1\r\nlue\":1}\r\n0\r\n\r\n")

    assert found[0][3] == b'{"value":1}'
    assert sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_http_1_0_closes_unless_asked() -> None:
    found, _ = requests_from(b"GET /health HTTP/1.0\r\n\r\n")

    assert found[0][4] is False


def test_dispatch_routes_and_errors() -> None:
    runtime = rt.Runtime()

    assert rt.dispatch(runtime, "GET", "/health", {}, b"") == (200, {"ok": True})
    assert rt.dispatch(runtime, "GET", "/run", {}, b"")[0] == 405
    assert rt.dispatch(runtime, "POST", "/nope", {}, b"")[0] == 404
    assert rt.dispatch(runtime, "POST", "/init", {}, b"{nope")[0] == 400
    assert rt.dispatch(runtime, "POST", "/run", {}, b'{"value": 1}')[0] == 403
    runtime = initialized("def main(): return 1")
    assert rt.dispatch(runtime, "POST", "/run", {}, b'{"value": 1, "deadline": "x"}')[0] == 400
    assert rt.dispatch(runtime, "POST", "/run", {}, b'{"valu": 1}')[0] == 400
    assert rt.dispatch(runtime, "POST", "/run", {"x-faasflow-logs": "1"}, b'{"value": 1}') == (
        200, b'{"output":"1","logs":""}')


# ---- cold mode ------------------------------------------------------------------------------


DEEP = 100_000


@pytest.mark.parametrize(("data", "content_type", "expected"), [
    (b'{"a": 1}', None, {"a": 1}),
    (b'{"a": 1}', "application/json", {"a": 1}),
    (b'{"a": 1}', "text/json", {"a": 1}),
    (b'{"a": 1}', "Application/JSON; charset=utf-8", {"a": 1}),
    (b'{"a": 1}', "application/cloudevents+json; charset=utf-8", {"a": 1}),
    (b'{"a": 1}', "text/plain", '{"a": 1}'),
    (b'{"a": 1}', "application/octet-stream", '{"a": 1}'),
    (b"42", None, 42),
    (b" [1.5, null] ", None, [1.5, None]),
    (b"plain", None, "plain"),
    (b"plain", "application/json", "plain"),
    (b"", None, ""),
    (b"", "application/json", ""),
    (b"NaN", "application/json", "NaN"),
    (b"[1e400]", None, "[1e400]"),
    (b"1" * 400, None, "1" * 400),
    (b"1" * 300, None, int("1" * 300)),
    (b'"\\ud800"', None, '"\\ud800"'),
    (b'"\\ud83d\\ude00"', None, "\U0001f600"),
    (b"\xef\xbb\xbf{}", None, "\ufeff{}"),
    (b"[" * 256 + b"]" * 256, None, json.loads(b"[" * 256 + b"]" * 256)),
    (b"[" * 257 + b"]" * 257, None, "[" * 257 + "]" * 257),
    (b'["' + b"[" * 300 + b'"]', None, ["[" * 300]),
    (b"[" * DEEP + b"]" * DEEP, "application/json", "[" * DEEP + "]" * DEEP),
    (b"\xff\x00", None, {"data_base64": "/wA="}),
    (b"\xff\x00", "application/json", {"data_base64": "/wA="}),
    (b"\xff\x00", "text/plain", {"data_base64": "/wA="}),
])
def test_one_rule_decodes_the_input_warm_and_cold(data: bytes, content_type: str | None,
                                                  expected: Any) -> None:
    assert rt.decode_input(data, content_type) == expected


def test_the_host_decodes_warm_input_with_this_very_file() -> None:
    from pipeline.runtime import warm

    assert warm.decode_input.__code__.co_filename == str(RUNTIME)


@pytest.mark.parametrize(("result", "output"), [
    ({"message": "Hello, Ada!", "é": [1, 2.5]}, '{"message":"Hello, Ada!","é":[1,2.5]}'.encode()),
    ("Hello, Ada!", b"Hello, Ada!"),
    ("", b""),
    (None, b"null"),
    (b"\xff raw", b"\xff raw"),
])
def test_one_encoder_makes_the_output(result: Any, output: bytes) -> None:
    assert rt.encode_output(result) == output


def test_a_result_that_is_no_unicode_fails() -> None:
    with pytest.raises(rt.Failure) as caught:
        rt.encode_output("\ud800")
    assert caught.value.status == 502


@pytest.mark.parametrize(("code", "reply"), [
    ("def main(a): return {'a': [1, 'é']}", {"output": '{"a":[1,"é"]}', "logs": ""}),
    ("def main(a): return 'text'", {"output": "text", "logs": ""}),
    ("def main(a): return b'\\xff\\x00'", {"output_base64": "/wA=", "logs": ""}),
])
def test_the_reply_with_logs_carries_the_output_as_cold_mode_writes_it(
        tmp_path: Path, code: str, reply: dict[str, str]) -> None:
    status, body = run(initialized(code), None, logs=True)
    done = cold(tmp_path, code, b"", FAASFLOW_MAIN="main")

    assert (status, body) == (200, reply)
    assert done.returncode == 0
    assert done.stdout == (body["output"].encode() if "output" in body
                           else base64.b64decode(body["output_base64"]))


def cold(tmp_path: Path, source: str, stdin: bytes, **env: str) -> Any:
    import subprocess

    handler = tmp_path / "handler.py"
    handler.write_text(source)
    return subprocess.run(
        [sys.executable, str(RUNTIME), "--cold"], input=stdin, capture_output=True, timeout=20,
        env={"PATH": os.environ["PATH"], "FAASFLOW_HANDLER": str(handler), **env})


def test_cold_mode_prints_only_the_result_on_stdout(tmp_path: Path) -> None:
    done = cold(tmp_path, "print('loading')\n"
                "def handle(event, context):\n    print('handling', context.activation_id)\n"
                "    return {'got': event, 'env': context.env.get('CE_ID')}\n",
                b'{"a": 1}', FAASFLOW_INVOCATION_ID="inv", CE_ID="ev")

    assert (done.returncode, done.stdout) == (0, b'{"got":{"a":1},"env":"ev"}')
    assert done.stderr == b"loading\nhandling inv\n"


def test_cold_mode_writes_a_string_as_its_text(tmp_path: Path) -> None:
    done = cold(tmp_path, "def run(event):\n    return f'Hello, {event}!'\n", b"Ada",
                FAASFLOW_MAIN="run")

    assert (done.returncode, done.stdout) == (0, b"Hello, Ada!")


def test_cold_mode_failures_exit_1_with_the_reason(tmp_path: Path) -> None:
    raised = cold(tmp_path, "def handle(event, context):\n    raise KeyError('k')\n", b"")
    broken = cold(tmp_path, "def handle(:\n", b"")

    assert (raised.returncode, raised.stdout) == (1, b"")
    assert raised.stderr.decode().endswith("KeyError: 'k'\nKeyError: 'k'\n")
    assert (broken.returncode, broken.stdout) == (1, b"")
    assert b"SyntaxError" in broken.stderr
