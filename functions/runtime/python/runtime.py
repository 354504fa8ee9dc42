"""faasflow's in-container runtime for Python: the OpenWhisk action protocol over HTTP/1.1.

Self-contained (standard library only, Python 3.11): the warm pool bind-mounts this folder
read-only at /opt/faasflow into images that were not built for it, so it imports nothing
of faasflow. The contract is written down in functions/README.md; in short:

    POST /init   {"value": {"code", "main", "env", "binary"}} -> 200 {"ok": true}
                 a second /init -> 403; code that does not load, or has no MAIN -> 502
    POST /run    {"value": <input>, "activation_id", "deadline": <epoch ms>, "env": {…}}
                 -> 200 <the result as JSON>, or 502 {"error": "…"} when the handler failed;
                 with "X-Faasflow-Logs: 1": {"output" | "output_base64" | "error", "logs"},
                 "output" being exactly what cold mode writes to stdout
    GET /health  -> 200 {"ok": true}

Modes (argv first, then FAASFLOW_MODE, default warm):

    runtime.py                  warm: serve; the handler comes from /init, or from
                                FAASFLOW_HANDLER=<file.py> and FAASFLOW_MAIN (default handle)
    runtime.py --cold           the cold contract with that handler: stdin in, stdout out, once
    runtime.py --exec CMD ARG…  warm, fork per /run: CMD gets the input on stdin and its
                                stdout is the output, byte for byte, as in a cold container

It listens on the unix socket $FAASFLOW_RUNTIME_SOCKET (default /run/faasflow/runtime.sock,
mode 0666, made under a temporary name and renamed into place once it accepts connections,
so its appearance means ready), or on 0.0.0.0:$FAASFLOW_RUNTIME_PORT when that is set.
/run calls are served one at a time; /health answers while a call runs.

The host imports ``decode_input`` from this file (pipeline/runtime/shim.py), so that warm
calls' input is decoded by the very function cold mode uses.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import types
from typing import Any

DEFAULT_SOCKET = "/run/faasflow/runtime.sock"
LOG_CAP = 64 * 1024  # bytes of captured output per call
MAX_BODY = int(os.environ.get("FAASFLOW_RUNTIME_MAX_BODY_BYTES", 32 << 20))
MAX_OUTPUT = int(os.environ.get("FAASFLOW_MAX_OUTPUT_BYTES", 1 << 20))  # exec mode's stdout
LOGS_HEADER = "x-faasflow-logs"
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
           502: "Bad Gateway"}


class Failure(Exception):
    """Answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------------------------
# Input and output: one rule for warm and cold (functions/README.md, "What a handler gets").

JSON_MEDIA_TYPES = ("application/json", "text/json")
MAX_JSON_DEPTH = 256
_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")


def decode_input(data: bytes, content_type: str | None) -> Any:
    """The event as a handler sees it, warm or cold: bytes that are not UTF-8 as
    ``{"data_base64": …}``; for a JSON media type (application/json, text/json, *+json) or
    none, the JSON value when the text is strict JSON, else the text; for any other type,
    the text. An empty body is "" (it is no JSON)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"data_base64": base64.b64encode(data).decode("ascii")}
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and media not in JSON_MEDIA_TYPES and not media.endswith("+json"):
        return text
    try:
        return loads_strict(text)
    except ValueError:
        return text


def loads_strict(text: str) -> Any:
    """JSON that every runtime reads as the same value, or ValueError: no NaN or Infinity,
    no number beyond a double's range, no lone surrogate, at most ``MAX_JSON_DEPTH`` deep
    (deeper would exhaust a parser's stack)."""
    if not _depth_within(text, MAX_JSON_DEPTH):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    value = json.loads(text, parse_float=_finite, parse_int=_integer,
                        parse_constant=_refuse)
    if "\\u" in text:  # an escaped lone surrogate parses, but is no Unicode: refuse it
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError
    return value


def _depth_within(text: str, limit: int) -> bool:
    if text.count("[") + text.count("{") <= limit:
        return True
    depth = 0
    for bracket in _JSON_BRACKETS.findall(_JSON_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return False
    return True


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number out of range: {text[:40]}")
    return number


def _integer(text: str) -> int:
    if len(text) > 300 and math.isinf(float(text)):
        raise ValueError(f"number out of range: {text[:40]}…")
    return int(text)


def _refuse(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def encode_output(result: Any) -> bytes:
    """The output of a result, warm or cold: bytes as they are, a string as its UTF-8 text,
    anything else as compact JSON."""
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)
    if isinstance(result, str):
        try:
            return result.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Failure(502, f"the result is not valid Unicode: {exc}") from None
    return _encode(result)


def _encode(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is one
        raise Failure(502, f"the result is not JSON-serializable: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Handlers: what a /run calls.


class Context:
    """The second argument of ``handle(event, context)``."""

    __slots__ = ("activation_id", "deadline", "env", "function_name")

    def __init__(self, activation_id: str | None, deadline: int | None,
                 env: dict[str, str]) -> None:
        self.activation_id = activation_id
        self.deadline = deadline  # epoch milliseconds, or None
        self.env = env  # this call's variables (CE_*, FAASFLOW_*), beside os.environ
        self.function_name = os.environ.get("FAASFLOW_FUNCTION", "")

    def remaining_ms(self) -> int | None:
        """Milliseconds until the deadline (negative once passed), or None without one."""
        return None if self.deadline is None else int(self.deadline - time.time() * 1000)

    def __repr__(self) -> str:
        return (f"Context(activation_id={self.activation_id!r}, deadline={self.deadline!r}, "
                f"function_name={self.function_name!r})")


class CodeHandler:
    """A Python function: ``main(args)``, ``main(event, context)`` or ``main()``, chosen by
    how many positional parameters it takes; ``async def`` works too."""

    def __init__(self, source: str, filename: str, module_name: str, main: str) -> None:
        try:
            code = compile(source, filename, "exec")
        except SyntaxError as exc:
            raise Failure(502, f"SyntaxError: {exc.msg} ({filename}, line {exc.lineno})") from None
        import linecache  # so that tracebacks show the lines of code that came over /init

        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        module = types.ModuleType(module_name)
        module.__file__ = filename
        sys.modules[module_name] = module  # dataclasses, pickle and friends look it up
        try:
            exec(code, module.__dict__)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            _print_traceback(exc)
            raise Failure(502, f"loading the code failed: {_describe(exc)}") from None
        function = getattr(module, main, None)
        if not callable(function):
            raise Failure(502, f"the code defines no function {main!r}")
        self.function = function
        self.arity = _positional_arity(function)

    @classmethod
    def from_file(cls, path: str, main: str) -> CodeHandler:
        try:
            with open(path, encoding="utf-8") as file:
                source = file.read()
        except OSError as exc:
            raise Failure(502, f"cannot read the handler {path}: {exc.strerror}") from None
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in sys.path:
            sys.path.insert(0, folder)  # its sibling modules and vendored packages import
        name = os.path.splitext(os.path.basename(path))[0]
        return cls(source, path, name, main)

    def call(self, value: Any, context: Context, capture: LogBuffer | None) -> Any:
        saved = sys.stdout, sys.stderr
        if capture is not None:
            sys.stdout = sys.stderr = capture
        try:
            result = self.function(*(value, context)[: self.arity])
            if hasattr(result, "__await__"):
                import asyncio

                result = asyncio.run(_awaited(result))
            return result
        except (Exception, SystemExit) as exc:
            _print_traceback(exc)
            raise Failure(502, _describe(exc)) from None
        finally:
            sys.stdout, sys.stderr = saved


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _positional_arity(function: Any) -> int:
    """0, 1 or 2: how many of (event, context) to pass."""
    code = getattr(function, "__code__", None)
    if code is not None:
        if code.co_flags & 0x04:  # CO_VARARGS
            return 2
        count = code.co_argcount - (1 if hasattr(function, "__self__") else 0)
        return max(0, min(count, 2))
    import inspect

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 2
    count = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return 2
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return min(count, 2)


class ExecHandler:
    """Fork per call, like the classic watchdog: the input on stdin, stdout is the output.
    Both byte for byte: a string input is written as its UTF-8 text, ``{"data_base64": …}``
    as the bytes it encodes (how the host sends an exec-mode container every body), other
    JSON as its compact text; stdout is returned as bytes (``encode_output`` keeps them)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def call(self, value: Any, context: Context, capture: LogBuffer | None) -> Any:
        import subprocess

        if isinstance(value, dict) and list(value) == ["data_base64"]:
            data = base64.b64decode(str(value["data_base64"]))
        else:
            data = encode_output(value)
        env = dict(os.environ)
        env.update(context.env)
        if context.activation_id:
            env.setdefault("FAASFLOW_INVOCATION_ID", context.activation_id)
        if context.deadline is not None:
            env["FAASFLOW_DEADLINE_MS"] = str(context.deadline)
        try:
            child = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            raise Failure(502, f"cannot run {self.argv[0]}: {exc.strerror}") from None
        remaining = context.remaining_ms()
        deadline = None if remaining is None else time.monotonic() + max(remaining, 0) / 1000
        out, err, problem = _exchange(child, data, deadline)
        code = child.wait()
        logs = err.decode("utf-8", "replace")
        if capture is not None:
            capture.write(logs)
        elif logs:
            sys.stderr.write(logs)
            sys.stderr.flush()
        if problem:
            raise Failure(502, problem)
        if code != 0:
            why = f"exited with code {code}" if code > 0 else f"killed by signal {-code}"
            tail = logs.strip()[-2000:]
            raise Failure(502, f"{self.argv[0]} {why}" + (f": {tail}" if tail else ""))
        return out


def _exchange(child: Any, data: bytes, deadline: float | None) -> tuple[bytes, bytes, str | None]:
    """Feed stdin, drain stdout and stderr (keeping at most their caps) until the child closes
    them; kill it at the deadline or when stdout outgrows its cap."""
    import selectors

    out, err = bytearray(), bytearray()
    caps = {child.stdout: (out, MAX_OUTPUT), child.stderr: (err, LOG_CAP)}
    problem = None
    with selectors.DefaultSelector() as selector:
        for stream in (child.stdout, child.stderr):
            selector.register(stream, selectors.EVENT_READ)
        if data:
            os.set_blocking(child.stdin.fileno(), False)
            selector.register(child.stdin, selectors.EVENT_WRITE)
        else:
            child.stdin.close()
        view, sent = memoryview(data), 0
        while selector.get_map():
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                problem = "deadline exceeded: the command was killed"
                break
            for key, _ in selector.select(timeout):
                stream = key.fileobj
                if stream is child.stdin:
                    try:
                        sent += os.write(stream.fileno(), view[sent:sent + 65536])  # type: ignore[union-attr]
                    except BrokenPipeError:
                        sent = len(data)  # it stopped reading its input: its right
                    if sent >= len(data):
                        selector.unregister(stream)
                        stream.close()  # type: ignore[union-attr]
                    continue
                chunk = os.read(stream.fileno(), 65536)  # type: ignore[union-attr]
                if not chunk:
                    selector.unregister(stream)
                    continue
                buffer, cap = caps[stream]
                room = cap - len(buffer)
                if stream is child.stdout and len(chunk) > room:
                    problem = f"the output exceeded {cap} bytes: the command was killed"
                    break
                buffer += chunk[: max(room, 0)]  # stderr beyond its cap is drained, not kept
            if problem:
                break
    if problem:
        child.kill()
    for stream in (child.stdin, child.stdout, child.stderr):
        if not stream.closed:
            stream.close()
    return bytes(out), bytes(err), problem


# ---------------------------------------------------------------------------------------------
# The runtime: /init and /run, independent of HTTP.


class LogBuffer(io.TextIOBase):
    """A text stream keeping the first ``LOG_CAP`` bytes written to it."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._room = LOG_CAP

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._room > 0 and text:
            data = text[: self._room].encode("utf-8", "replace")[: self._room]
            self._parts.append(data)
            self._room -= len(data)
        return len(text)

    def text(self) -> str:
        return b"".join(self._parts).decode("utf-8", "ignore")  # a cut character goes


class Runtime:
    """One handler, set at start (``preloaded``) or by the first /init; /run calls in turn."""

    def __init__(self, handler: CodeHandler | ExecHandler | None = None,
                 load_error: str | None = None) -> None:
        self.handler = handler
        self.load_error = load_error
        self.preloaded = handler is not None or load_error is not None
        self.initialized = False
        self._init_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def init(self, body: Any) -> tuple[int, Any]:
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, dict):
            raise Failure(400, 'expected {"value": {"code": …, "main": …}}')
        with self._init_lock:
            if self.initialized:
                raise Failure(403, "Cannot initialize the action more than once.")
            env = value.get("env") or {}
            if not isinstance(env, dict):
                raise Failure(400, "env must be an object")
            os.environ.update({str(k): v if isinstance(v, str) else json.dumps(v)
                               for k, v in env.items()})
            if not self.preloaded:  # a preloaded runtime takes only env from /init
                if value.get("binary"):
                    raise Failure(502, "binary (zip) code is not supported: send the source")
                code, main = value.get("code"), value.get("main") or "main"
                if not isinstance(code, str) or not isinstance(main, str):
                    raise Failure(502, "code and main must be strings")
                self.handler = CodeHandler(code, "<action>", "action", main)
            self.initialized = True
        return 200, {"ok": True}

    def run(self, body: Any, want_logs: bool) -> tuple[int, Any]:
        if not isinstance(body, dict) or "value" not in body:
            raise Failure(400, 'expected {"value": <input>, …}')
        if self.load_error is not None:
            raise Failure(502, f"the handler could not be loaded: {self.load_error}")
        if self.handler is None:
            raise Failure(403, "not initialized: POST /init first")
        env = body.get("env") or {}
        if not isinstance(env, dict):
            raise Failure(400, "env must be an object")
        context = Context(
            activation_id=str(body["activation_id"]) if body.get("activation_id") else None,
            deadline=_milliseconds(body.get("deadline")),
            env={str(k): str(v) for k, v in env.items()},
        )
        for key in ("activation_id", "deadline"):  # as OpenWhisk's runtimes set them
            if body.get(key) is not None:
                os.environ[f"__OW_{key.upper()}"] = str(body[key])
        capture = LogBuffer() if want_logs else None
        with self._run_lock:
            try:
                result = self.handler.call(body["value"], context, capture)
                if capture is None:  # OpenWhisk's answer: the result as JSON
                    if isinstance(result, (bytes, bytearray)):
                        result = decode_input(bytes(result), None)
                    return 200, _encode(result)
                output = encode_output(result)
            except Failure as failure:
                if capture is None:
                    raise
                return failure.status, {"error": failure.message, "logs": capture.text()}
        return 200, _output_reply(output, capture.text())


def _output_reply(output: bytes, logs: str) -> bytes:
    """The answer with logs: the output exactly as cold mode writes it to stdout, as text
    when it is UTF-8, else base64."""
    try:
        field = b'"output":' + _encode(output.decode("utf-8"))
    except UnicodeDecodeError:
        field = b'"output_base64":' + _encode(base64.b64encode(output).decode("ascii"))
    return b"{" + field + b',"logs":' + _encode(logs) + b"}"


def _milliseconds(value: Any) -> int | None:
    """A deadline in epoch milliseconds; absent, null or 0 means none."""
    if value is None or value == "":
        return None
    try:
        deadline = int(value)
    except (TypeError, ValueError):
        raise Failure(400, f"deadline must be epoch milliseconds, not {value!r}") from None
    return deadline if deadline > 0 else None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _print_traceback(exc: BaseException) -> None:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    here = os.path.abspath(__file__)
    kept = [f for f in frames if os.path.abspath(f.filename) != here] if frames else []
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(kept),
             *traceback.format_exception_only(type(exc), exc)]
    sys.stderr.write("".join(lines))
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# HTTP/1.1: just enough of it, with keep-alive, for a client on the same host.


class BadRequest(Exception):
    pass


Request = tuple[str, str, dict[str, str], bytes, bool]


def read_request(rfile: io.BufferedIOBase, send: Any) -> Request | None:
    """(method, path, headers, body, keep_alive), or None when the peer closed."""
    line = rfile.readline(65537)
    while line in (b"\r\n", b"\n"):  # tolerated between requests
        line = rfile.readline(65537)
    if not line:
        return None
    try:
        method, target, version = line.decode("latin-1").split()
    except ValueError:
        raise BadRequest("malformed request line") from None
    headers: dict[str, str] = {}
    while True:
        raw = rfile.readline(65537)
        if raw in (b"\r\n", b"\n", b""):
            break
        if len(headers) > 100:
            raise BadRequest("too many headers")
        name, sep, content = raw.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest("malformed header")
        headers[name.strip().lower()] = content.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = ("close" not in connection) if version == "HTTP/1.1" else (
        "keep-alive" in connection)
    if headers.get("expect", "").lower() == "100-continue":
        send(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(rfile)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length > MAX_BODY:
            raise BadRequest(f"body over {MAX_BODY} bytes")
        body = rfile.read(length) if length > 0 else b""
        if len(body) < length:
            return None
    return method, target.split("?", 1)[0], headers, body, keep_alive


def _read_chunked(rfile: io.BufferedIOBase) -> bytes:
    body = bytearray()
    while True:
        try:
            size = int(rfile.readline(1024).split(b";", 1)[0], 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise BadRequest(f"body over {MAX_BODY} bytes")
        body += rfile.read(size)
        rfile.readline(1024)


def response(status: int, body: Any, keep_alive: bool) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            + ("" if keep_alive else "Connection: close\r\n") + "\r\n")
    return head.encode() + data


class Connection(socketserver.StreamRequestHandler):
    server: Any

    def setup(self) -> None:
        super().setup()
        if self.request.family in (socket.AF_INET, socket.AF_INET6):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        send = self.request.sendall
        while True:
            try:
                request = read_request(self.rfile, send)
            except BadRequest as exc:
                send(response(400, {"error": str(exc)}, keep_alive=False))
                return
            except OSError:
                return
            if request is None:
                return
            method, path, headers, body, keep_alive = request
            status, payload = dispatch(self.server.runtime, method, path, headers, body)
            try:
                send(response(status, payload, keep_alive))
            except OSError:
                return
            if not keep_alive:
                return


ROUTES = {"/init": "POST", "/run": "POST", "/health": "GET"}


def dispatch(runtime: Runtime, method: str, path: str, headers: dict[str, str],
             body: bytes) -> tuple[int, Any]:
    try:
        if path not in ROUTES:
            raise Failure(404, f"no route {path}: /init, /run and /health are")
        if method != ROUTES[path]:
            raise Failure(405, f"{path} takes {ROUTES[path]}")
        if path == "/health":
            return 200, {"ok": True}
        try:
            document = json.loads(body) if body else None
        except ValueError as exc:
            raise Failure(400, f"the body is not JSON: {exc}") from None
        if path == "/init":
            return runtime.init(document)
        return runtime.run(document, headers.get(LOGS_HEADER, "") in ("1", "true"))
    except Failure as failure:
        return failure.status, {"error": failure.message}


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, path: str, runtime: Runtime) -> None:
        self.runtime = runtime
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        staging = f"{path}.{os.getpid()}.new"
        if os.path.lexists(staging):
            os.unlink(staging)
        super().__init__(staging, Connection)
        os.chmod(staging, 0o666)  # the host side connects as whichever user it runs as
        os.replace(staging, path)  # replaces a stale socket; appears only once listening

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, port: int, runtime: Runtime) -> None:
        self.runtime = runtime
        super().__init__(("0.0.0.0", port), Connection)


def serve(runtime: Runtime) -> None:
    port = os.environ.get("FAASFLOW_RUNTIME_PORT")
    server: socketserver.BaseServer
    if port:
        server = TCPServer(int(port), runtime)
        where = f"0.0.0.0:{port}"
    else:
        where = os.environ.get("FAASFLOW_RUNTIME_SOCKET") or DEFAULT_SOCKET
        server = UnixServer(where, runtime)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 gets no default action
    sys.stderr.write(f"faasflow runtime (python) listening on {where}\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ---------------------------------------------------------------------------------------------
# Entry point.


def run_cold() -> int:
    """One call: the event on stdin (``decode_input``), the output on stdout
    (``encode_output``), the handler's prints and tracebacks on stderr; exit 1 when it
    failed."""
    deadline = os.environ.get("FAASFLOW_DEADLINE_MS")
    context = Context(os.environ.get("FAASFLOW_INVOCATION_ID"),
                      int(deadline) if deadline else None,
                      {k: v for k, v in os.environ.items() if k.startswith(("CE_", "FAASFLOW_"))})
    stdout = sys.stdout
    sys.stdout = sys.stderr  # prints, at load too, are logs: stdout carries only the result
    try:
        handler, _ = preload()
        if handler is None:
            return 1
        value = decode_input(sys.stdin.buffer.read(), os.environ.get("CE_DATACONTENTTYPE"))
        result = handler.call(value, context, None)
        output = encode_output(result)
    except Failure as failure:
        sys.stderr.write(failure.message + "\n")
        return 1
    finally:
        sys.stdout = stdout
    sys.stderr.flush()
    stdout.buffer.write(output)
    stdout.flush()
    return 0


def preload() -> tuple[CodeHandler | None, str | None]:
    """The handler named by FAASFLOW_HANDLER, or (None, the reason it did not load)."""
    path = os.environ["FAASFLOW_HANDLER"]
    try:
        return CodeHandler.from_file(path, os.environ.get("FAASFLOW_MAIN") or "handle"), None
    except Failure as failure:
        sys.stderr.write(f"faasflow runtime: {failure.message}\n")
        return None, failure.message


def main(argv: list[str]) -> int:
    if argv[:1] == ["--exec"]:
        if len(argv) < 2:
            sys.stderr.write("usage: runtime.py --exec CMD [ARGS…]\n")
            return 2
        serve(Runtime(ExecHandler(argv[1:])))
        return 0
    mode = (argv[0].lstrip("-") if argv else os.environ.get("FAASFLOW_MODE") or "warm").lower()
    if mode not in ("warm", "cold") or len(argv) > 1:
        sys.stderr.write("usage: runtime.py [--warm | --cold | --exec CMD [ARGS…]]\n")
        return 2
    if mode == "cold":
        if not os.environ.get("FAASFLOW_HANDLER"):
            sys.stderr.write("cold mode needs FAASFLOW_HANDLER=<file.py>\n")
            return 2
        return run_cold()
    runtime = Runtime(*preload()) if os.environ.get("FAASFLOW_HANDLER") else Runtime()
    serve(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
