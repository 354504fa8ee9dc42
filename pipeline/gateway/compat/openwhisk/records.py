"""OpenWhisk's documents from faasflow's records, and back: pure functions, no I/O.

An OpenWhisk action is a faasflow function; what faasflow has no field for (the kind as
OpenWhisk names it, default parameters, annotations, version) rides in the function's
``annotations`` under ``openwhisk.*``. An activation is an invocation: its id is the
invocation's UUID without dashes (OpenWhisk's 32 hex digits), its record is made from the
invocation's ``Result``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.errors import InvalidRequest
from pipeline.records import Failure, Result, Status, strict_loads
from pipeline.specs import FunctionSpec, Language

NAMESPACE = "guest"  # the one namespace; ``_`` (the caller's own) names it too
NAMESPACES = ("_", NAMESPACE)
NAMESPACE_PATTERN = r"^(_|guest)$"
VERSION = "0.0.1"
BLACKBOX = "blackbox"
DEFAULT_TIMEOUT_MS = 60_000  # OpenWhisk's defaults, when a create gives no limits
DEFAULT_MEMORY_MB = 256
LOG_LIMIT_MB = 10

KIND = "openwhisk.kind"
PARAMETERS = "openwhisk.parameters"
ANNOTATIONS = "openwhisk.annotations"
VERSION_KEY = "openwhisk.version"
MAIN_KEY = "openwhisk.main"

_KINDS = {"python": Language.PYTHON, "nodejs": Language.NODE}
_KIND = re.compile(r"^(python|nodejs):(default|\d+(\.\d+)?)$")
_HEX = re.compile(r"^[0-9a-f]{32}$")

# OpenWhisk's activation response codes and their statuses
SUCCESS, APPLICATION_ERROR, DEVELOPER_ERROR, WHISK_ERROR = 0, 1, 2, 3
STATUS = {SUCCESS: "success", APPLICATION_ERROR: "application error",
          DEVELOPER_ERROR: "action developer error", WHISK_ERROR: "whisk internal error"}


def runtime_of(kind: str) -> Language | None:
    """The faasflow runtime of an OpenWhisk kind (``python:3``, ``nodejs:20``,
    ``nodejs:default``); None for ``blackbox`` (an image). Anything else is refused."""
    if kind == BLACKBOX:
        return None
    found = _KIND.fullmatch(kind)
    if found is None or (found.group(1) == "python" and not found.group(2).startswith("3")):
        raise InvalidRequest(f"kind '{kind}' is not supported: use python:3, nodejs:default, "
                             "nodejs:<version> or blackbox")
    return _KINDS[found.group(1)]


def activation_id(invocation_id: str) -> str:
    return invocation_id.replace("-", "")


def invocation_id_of(ident: str) -> str | None:
    """The invocation (UUID) an activation id names; None when it is no activation id."""
    if not _HEX.fullmatch(ident):
        return None
    return f"{ident[:8]}-{ident[8:12]}-{ident[12:16]}-{ident[16:20]}-{ident[20:]}"


def ms(timestamp: str | None) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp (0 for none)."""
    if not timestamp:
        return 0
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def key_values(mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": value} for key, value in mapping.items()]


def mapping_of(pairs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {str(pair["key"]): pair.get("value") for pair in pairs}


def merged(parameters: Mapping[str, Any], payload: Any) -> Any:
    """The action's input as OpenWhisk makes it: default parameters, then the payload's
    (which win). A payload that is no object is handed over as it is."""
    if not isinstance(payload, Mapping):
        return dict(parameters) if payload is None else payload
    return {**parameters, **payload}


@dataclass(frozen=True, slots=True)
class Action:
    """What OpenWhisk says about a faasflow function."""

    kind: str
    version: str
    parameters: dict[str, Any]
    annotations: dict[str, Any]
    timeout_ms: int
    memory_mb: int
    main: str = "main"

    @classmethod
    def of(cls, spec: FunctionSpec) -> Action:
        notes = spec.annotations
        kind = notes.get(KIND) or (_default_kind(spec.runtime) if spec.runtime else BLACKBOX)
        return cls(kind=kind, version=notes.get(VERSION_KEY, VERSION),
                   parameters=json.loads(notes.get(PARAMETERS, "{}")),
                   annotations=json.loads(notes.get(ANNOTATIONS, "{}")),
                   timeout_ms=round(spec.timeout_s * 1000), memory_mb=spec.memory_mb,
                   main=notes.get(MAIN_KEY, spec.main))

    def limits(self) -> dict[str, int]:
        return {"timeout": self.timeout_ms, "memory": self.memory_mb, "logs": LOG_LIMIT_MB,
                "concurrency": 1}


def _default_kind(runtime: Language) -> str:
    return "python:3" if runtime is Language.PYTHON else "nodejs:default"


def notes(kind: str, version: str, parameters: Mapping[str, Any],
          annotations: Mapping[str, Any], main: str) -> dict[str, str]:
    """A function's ``annotations`` holding an action's OpenWhisk fields."""
    return {KIND: kind, VERSION_KEY: version, PARAMETERS: json.dumps(dict(parameters)),
            ANNOTATIONS: json.dumps(dict(annotations)), MAIN_KEY: main}


# A code action's default parameters reach every run of it (through this API, faasflow's
# /function/, a subscription, a rule) as in OpenWhisk: its code gets a wrapper appended,
# the function's entry point, that merges them into the input and calls the action's main.
WRAPPER = "__faasflow_openwhisk_main"
_MARKER = {Language.PYTHON: "\n# faasflow: OpenWhisk default parameters\n",
           Language.NODE: "\n// faasflow: OpenWhisk default parameters\n"}
# (its own names are prefixed, so that none shadows the action's main)
_WRAPPERS = {Language.PYTHON: """\
def {wrapper}(__faasflow_input):
    __faasflow_defaults = __import__("json").loads({given})
    if isinstance(__faasflow_input, dict):
        __faasflow_input = {{**__faasflow_defaults, **__faasflow_input}}
    return {main}(__faasflow_input)
""", Language.NODE: """\
module.exports.{wrapper} = function (__faasflowInput, __faasflowContext) {{
  const __faasflowMain = typeof module.exports.{main} === 'function'
    ? module.exports.{main} : (typeof {main} === 'function' ? {main} : undefined);
  if (!__faasflowMain) throw new Error("the code exports no function '{main}'");
  const __faasflowObject = __faasflowInput !== null && typeof __faasflowInput === 'object'
    && !Array.isArray(__faasflowInput);
  return __faasflowMain(__faasflowObject
    ? Object.assign(JSON.parse({given}), __faasflowInput) : __faasflowInput, __faasflowContext);
}};
"""}


def with_parameters(runtime: Language, code: str, main: str,
                    parameters: Mapping[str, Any]) -> tuple[str, str]:
    """The code to deploy and its entry point: as given without parameters; otherwise with
    a wrapper that merges them under the input (an object; any other input as it is)."""
    if not parameters:
        return code, main
    if runtime is Language.PYTHON and not main.isidentifier():
        raise InvalidRequest(f"exec.main {main!r} is no Python identifier")
    given = json.dumps(json.dumps(dict(parameters)))  # a string literal in both languages
    wrapper = _WRAPPERS[runtime].format(wrapper=WRAPPER, main=main, given=given)
    return code + _MARKER[runtime] + wrapper, WRAPPER


def source_of(runtime: Language, code: str) -> str:
    """The action's own code, without the wrapper ``with_parameters`` appended."""
    return code.split(_MARKER[runtime], 1)[0]


def next_version(version: str) -> str:
    """OpenWhisk bumps the patch number on every update."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return VERSION
    return f"{parts[0]}.{parts[1]}.{int(parts[2]) + 1}"


def action_document(spec: FunctionSpec, namespace: str, with_code: bool) -> dict[str, Any]:
    action = Action.of(spec)
    exec_: dict[str, Any] = {"kind": action.kind, "binary": False}
    if with_code and spec.code is not None and spec.runtime is not None:
        exec_.update(code=source_of(spec.runtime, spec.code), main=action.main)
    if action.kind == BLACKBOX:
        exec_["image"] = spec.image
    return {"namespace": namespace, "name": spec.name, "version": action.version,
            "publish": False, "exec": exec_, "parameters": key_values(action.parameters),
            "limits": action.limits(),
            "annotations": [*key_values(action.annotations), {"key": "exec",
                                                               "value": action.kind}],
            "updated": ms(spec.updated_at)}


def response_of(result: Result, timeout_ms: int) -> tuple[int, Any]:
    """OpenWhisk's response code and result for a final Result: an object with ``error``
    is the action's own (handled) error; a raised error too, as OpenWhisk's Python runtime
    reports it; one that never ran its code (a failed start), ran out of time or returned
    no object is the developer's; faasflow's or Docker's own failure is OpenWhisk's."""
    if result.status is Status.SUCCEEDED:
        try:
            value = strict_loads(result.output)
        except (ValueError, UnicodeDecodeError):
            value = None
        if isinstance(value, dict):
            if "error" in value:
                return APPLICATION_ERROR, {"error": value["error"]}
            return SUCCESS, value
        if isinstance(value, list):
            return SUCCESS, value
        return DEVELOPER_ERROR, {"error": "The action did not return a dictionary."}
    if result.status is Status.TIMEOUT or result.failure is Failure.TIMEOUT:
        return DEVELOPER_ERROR, {
            "error": f"The action exceeded its time limits of {timeout_ms} milliseconds."}
    error = result.error or "The action failed."
    if result.failure is Failure.ERROR:
        return APPLICATION_ERROR, {"error": error}
    if result.failure is Failure.START:
        return DEVELOPER_ERROR, {"error": error}
    return WHISK_ERROR, {"error": error}


def response(code: int, result: Any) -> dict[str, Any]:
    return {"status": STATUS[code], "statusCode": code, "success": code == SUCCESS,
            "result": result}


def log_lines(logs: str, at: str | None) -> list[str]:
    """A Result's logs as OpenWhisk's lines: ``<time> stdout: <line>`` (faasflow keeps one
    stream: the function's stdout and stderr together)."""
    stamp = at or ""
    return [f"{stamp} stdout: {line}" for line in logs.splitlines()]


def activation(result: Result, action: Action | None, namespace: str,
               docs: bool = True) -> dict[str, Any]:
    """OpenWhisk's activation record of a final Result (``docs=False``: the brief form
    of a listing, without logs and response)."""
    action = action or Action(kind=BLACKBOX, version=VERSION, parameters={}, annotations={},
                              timeout_ms=DEFAULT_TIMEOUT_MS, memory_mb=DEFAULT_MEMORY_MB)
    queued, start, end = ms(result.queued_at), ms(result.started_at), ms(result.finished_at)
    start = start or queued
    end = end or start
    code, value = response_of(result, action.timeout_ms)
    annotations: list[dict[str, Any]] = [
        {"key": "path", "value": f"{NAMESPACE}/{result.function}"},
        {"key": "waitTime", "value": max(0, start - queued) if queued else 0},
        {"key": "kind", "value": action.kind},
        {"key": "timeout", "value": result.status is Status.TIMEOUT},
        {"key": "limits", "value": action.limits()},
    ]
    if result.cold_start and result.init_s is not None:
        annotations.insert(1, {"key": "initTime", "value": round(result.init_s * 1000)})
    record: dict[str, Any] = {
        "activationId": activation_id(result.invocation_id), "namespace": namespace,
        "name": result.function, "version": action.version, "subject": namespace,
        "publish": False, "start": start, "end": end,
        "duration": round((result.duration_s or 0.0) * 1000) if result.duration_s is not None
        else end - start,
        "statusCode": code, "annotations": annotations,
    }
    if docs:
        record["logs"] = log_lines(result.logs, result.finished_at)
        record["response"] = response(code, value)
    return record
