"""The Fn Project's function contract, format ``http-stream``: what lets an image built with
one of Fn's FDKs run unchanged as a warm faasflow function (``contract: fn``). Pure: the
warm runner and the container starter call these.

    the container's environment   FN_FORMAT=http-stream, FN_LISTENER=unix:<socket path>,
                                  FN_MEMORY, FN_TYPE, and the Fn names it was deployed under
    the FDK starts                binds a socket of its own beside that path, listens,
                                  then symlinks the path to it (``sockets.hand_back`` keeps
                                  the socket, not the link)
    each call                     POST /call with Fn-Call-Id, Fn-Deadline (RFC 3339),
                                  Fn-Intent: httprequest, Fn-Http-Method,
                                  Fn-Http-Request-Url, Content-Type and Fn-Http-H-<name>
                                  for the request's own headers; the body is the payload
    its reply                     HTTP 200: the function answered (its own status in
                                  Fn-Http-Status, its headers as Fn-Http-H-<name>);
                                  502: the function raised; 504: it gave up on its deadline

faasflow carries an invocation through Kafka as a CloudEvent: the request headers a function
sees are its Content-Type, the event's attributes as binary-mode CloudEvents headers
(``Fn-Http-H-Ce-Id``, ``Fn-Http-H-Ce-Source``…) and, when an HTTP call made the event and
the gateway recorded it on the event (the ``Http_*`` variables of ``pipeline.calls``), that
request's method, path, query and headers; otherwise the method is POST and the URL
``/function/<name>``, where faasflow invokes it.

A function's answer maps to the verdicts of faasflow's own warm runtimes: a status of 400
or more (Fn-Http-Status, or the FDK's 502) is the function's error (``Failure.ERROR``),
the FDK's 504 a timeout; a crash, a hang past ``timeout_s`` and the memory limit are judged
by the warm runner as for any warm container.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.records import Failure, Status
from pipeline.specs import FunctionSpec

FORMAT = "http-stream"
CALL_PATH = "/call"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# the names under which the Fn API deployed a function (``FunctionSpec.annotations``),
# given to the FDK as Fn gives them
ANNOTATION_ENV = {"fn.app_id": "FN_APP_ID", "fn.app_name": "FN_APP_NAME",
                  "fn.fn_id": "FN_FN_ID", "fn.fn_name": "FN_FN_NAME"}
ERROR_BODY_CHARS = 500
# the HTTP request's variables (``pipeline.calls``, OpenFaaS's watchdog names) that are not
# one of its headers
WATCHDOG_OWN = frozenset({"Http_Method", "Http_Path", "Http_Query", "Http_ContentType"})
HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")


def environment(function: FunctionSpec, socket_path: str) -> dict[str, str]:
    """What Fn's agent sets in a hot container, the FDK's listener at ``socket_path``."""
    env = {"FN_FORMAT": FORMAT, "FN_LISTENER": f"unix:{socket_path}",
           "FN_MEMORY": str(function.memory_mb), "FN_TYPE": "sync",
           "FN_FN_NAME": function.name, "FN_APP_NAME": ""}
    for annotation, variable in ANNOTATION_ENV.items():
        if annotation in function.annotations:
            env[variable] = function.annotations[annotation]
    return env


def call_headers(function: FunctionSpec, invocation_id: str, content_type: str | None,
                 event_env: Mapping[str, str], now: datetime) -> dict[str, str]:
    """The headers of one ``POST /call``: ``event_env`` holds the event's ``CE_*``
    variables (as cold functions get them), ``now`` starts the deadline."""
    deadline = now.astimezone(UTC) + timedelta(seconds=function.timeout_s)
    media = _header_value(content_type or DEFAULT_CONTENT_TYPE)
    url = f"/function/{function.name}"
    if event_env.get("Http_Path", "/") != "/":
        url += event_env["Http_Path"]
    if event_env.get("Http_Query"):
        url += f"?{event_env['Http_Query']}"
    headers = {"Fn-Call-Id": invocation_id,
               "Fn-Deadline": deadline.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "Fn-Intent": "httprequest",
               "Fn-Http-Method": _header_value(event_env.get("Http_Method", "POST")),
               "Fn-Http-Request-Url": _header_value(url),
               "Content-Type": media,
               "Fn-Http-H-Content-Type": media}
    for variable, value in sorted(event_env.items()):
        if variable.startswith("CE_") and len(variable) > 3:
            headers[f"Fn-Http-H-Ce-{variable[3:].capitalize()}"] = _header_value(value)
        elif variable.startswith("Http_") and variable not in WATCHDOG_OWN:
            name = variable[5:].replace("_", "-")
            if HEADER_NAME.fullmatch(name) and name.lower() != "content-type":
                headers[f"Fn-Http-H-{name}"] = _header_value(value)
    return headers


def _header_value(value: str) -> str:
    """``value`` safe in a header line: no control characters (a CR or LF would end the
    line), and the UTF-8 bytes of the rest as the wire's latin-1 writes them."""
    clean = "".join(" " if ord(c) < 0x20 or ord(c) == 0x7F else c for c in value)
    return clean.encode().decode("latin-1")


@dataclass(frozen=True, slots=True)
class Answer:
    """What one call came to: ``status`` is final, ``failure`` and ``error`` set unless it
    succeeded; ``headers`` are the function's own response headers (``Fn-Http-H-*``)."""

    status: Status
    output: bytes = b""
    failure: Failure | None = None
    error: str | None = None
    http_status: int = 200
    headers: Mapping[str, str] | None = None


def answer(status: int, headers: Mapping[str, str], body: bytes) -> Answer:
    """The FDK's reply read (``headers`` with lower-case names, as ``wire.Reply``'s)."""
    own = {name[len("fn-http-h-"):]: value for name, value in headers.items()
           if name.startswith("fn-http-h-")}
    if "content-type" not in own and "content-type" in headers:
        own["content-type"] = headers["content-type"]
    if status == 502:
        return Answer(Status.FAILED, failure=Failure.ERROR, http_status=502, headers=own,
                      error=f"the function failed: {_excerpt(body) or 'HTTP 502'}")
    if status == 504:
        return Answer(Status.TIMEOUT, failure=Failure.TIMEOUT, http_status=504, headers=own,
                      error=f"the function gave up at its deadline: {_excerpt(body) or 'HTTP 504'}")
    if status != 200:
        return Answer(Status.FAILED, failure=Failure.ERROR, http_status=status, headers=own,
                      error=f"the FDK answered HTTP {status}: {_excerpt(body)}")
    try:
        own_status = int(headers.get("fn-http-status", "200"))
    except ValueError:
        return Answer(Status.FAILED, failure=Failure.ERROR, headers=own,
                      error=f"the FDK answered a malformed Fn-Http-Status: "
                            f"{headers['fn-http-status'][:50]!r}")
    if own_status >= 400:
        return Answer(Status.FAILED, failure=Failure.ERROR, http_status=own_status, headers=own,
                      error=f"the function answered HTTP {own_status}: {_excerpt(body)}")
    return Answer(Status.SUCCEEDED, output=body, http_status=own_status, headers=own)


def _excerpt(body: bytes) -> str:
    return body[:ERROR_BODY_CHARS].decode(errors="replace").strip()
