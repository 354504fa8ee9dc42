"""Fn's objects on faasflow's records, and back. Pure.

- An Fn **app** is a ``Resource`` of kind ``fn.app`` named by the app's name; its document
  is Fn's own (``id``, ``name``, ``config``, ``annotations``, ``syslog_url``).
- An Fn **fn** is a faasflow function named ``<app>-<fn>`` (so it is invoked, listed and
  subscribed like any other), warm, speaking Fn's contract (``contract: fn``); its Fn
  identity is in its annotations (``fn.fn_id``, ``fn.app_id``, ``fn.app_name``,
  ``fn.fn_name``; ``fn.config`` and ``fn.annotations`` hold Fn's own documents as JSON).
  Its environment is the app's config under the fn's own, as Fn gives it.
- An Fn **trigger** is a ``Resource`` of kind ``fn.trigger`` named by its id.
- A v1 **route** (``/v1/apps/{app}/routes``) is an fn named after its path, with the path
  in the annotation ``fn.route``.

Ids are ULIDs, as Fn's. Listings are pages of ``per_page`` in name order, the cursor being
the last name given (base64, opaque to clients), as Fn's.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from pipeline.errors import InvalidRequest
from pipeline.specs import Contract, FunctionSpec, Mode, Resource

APP = "fn.app"
TRIGGER = "fn.trigger"
FN_ID, APP_ID, APP_NAME, FN_NAME = "fn.fn_id", "fn.app_id", "fn.app_name", "fn.fn_name"
FN_CONFIG, FN_ANNOTATIONS, ROUTE = "fn.config", "fn.annotations", "fn.route"
FORMAT = "fn.format"
HTTP_STREAM = "http-stream"
FORMATS = {HTTP_STREAM: (Mode.WARM, Contract.FN), "default": (Mode.COLD, Contract.FAASFLOW)}
INVOKE_ENDPOINT = "fnproject.io/fn/invokeEndpoint"
HTTP_ENDPOINT = "fnproject.io/trigger/httpEndpoint"
# Fn's own name rule is [a-zA-Z0-9_-]{1,255} (app), {1,255} (fn); faasflow's names, which
# become Kafka topic names, are lower case, and an fn's is <app>-<fn>, at most 100
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,48}")
DEFAULTS = {"memory": 128, "timeout": 30, "idle_timeout": 30}
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PER_PAGE = (30, 100)  # Fn's default and its most


def new_id(now_ms: int | None = None, entropy: bytes | None = None) -> str:
    """A ULID: 48 bits of milliseconds, 80 random bits, in Crockford's base32."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(entropy or os.urandom(10), "big")
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"Missing {kind} name")
    if not NAME.fullmatch(name):
        raise InvalidRequest(f"Invalid {kind} name {name!r}: on faasflow use 1-49 of a-z 0-9 "
                             "_ -, starting with a letter or digit")
    return name


def function_name(app: str, fn: str) -> str:
    return f"{app}-{fn}"


def merged(old: Mapping[str, Any], change: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fn's update of a map: keys set to an empty value are removed."""
    out = dict(old)
    for key, value in (change or {}).items():
        if value in ("", None, {}):
            out.pop(key, None)
        else:
            out[key] = value
    return out


def app_doc(resource: Resource) -> dict[str, Any]:
    return {**resource.doc, "created_at": resource.created_at,
            "updated_at": resource.updated_at}


def new_app(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": new_id(), "name": check_name("app", name),
            "config": strings("config", body.get("config")),
            "annotations": dict(body.get("annotations") or {}),
            "syslog_url": body.get("syslog_url") or ""}


def strings(field: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequest(f"{field} must be an object of strings")
    return dict(value)


def fn_spec(app: Mapping[str, Any], body: Mapping[str, Any], old: FunctionSpec | None,
            *, route: str | None = None, fn_format: str = HTTP_STREAM) -> FunctionSpec:
    """The function for an fn of ``app`` (created, or ``old`` updated with ``body``);
    digest and timestamps are the control plane's to fill. ``fn_format`` is a v1 route's:
    ``http-stream`` (an FDK, warm) or ``default`` (stdin to stdout, a container a call)."""
    if fn_format not in FORMATS:
        raise InvalidRequest(f"Invalid route format {fn_format!r}: faasflow runs "
                             f"{' and '.join(sorted(FORMATS))}")
    mode, contract = FORMATS[fn_format]
    before: dict[str, Any] = (fn_doc(old) if old is not None
                              else {**DEFAULTS, "config": {}, "annotations": {}})
    name = before.get("name") or check_name("fn", body.get("name"))
    config = merged(before["config"], strings("config", body.get("config")))
    annotations = merged(before["annotations"], body.get("annotations"))
    numbers = {key: _number(key, body.get(key), before[key]) for key in DEFAULTS}
    image = body.get("image") or (old.image if old else None)
    if not isinstance(image, str) or not image:
        raise InvalidRequest("Missing image")
    own = {FN_ID: old.annotations[FN_ID] if old else new_id(),
           APP_ID: app["id"], APP_NAME: app["name"], FN_NAME: name,
           FN_CONFIG: json.dumps(config, sort_keys=True),
           FN_ANNOTATIONS: json.dumps(annotations, sort_keys=True)}
    if route is not None:
        own[ROUTE] = route
        own[FORMAT] = fn_format
    spec = FunctionSpec(
        name=function_name(app["name"], name), image=image, image_digest="", mode=mode,
        contract=contract, timeout_s=float(numbers["timeout"]),
        memory_mb=int(numbers["memory"]), idle_timeout_s=float(numbers["idle_timeout"]),
        env={**app.get("config", {}), **config}, annotations=own)
    return replace(spec, created_at=old.created_at) if old else spec


def with_app_config(spec: FunctionSpec, app: Mapping[str, Any]) -> FunctionSpec:
    """The function again, its environment from the app's config as it is now."""
    own = json.loads(spec.annotations.get(FN_CONFIG, "{}"))
    return replace(spec, env={**app.get("config", {}), **own},
                   annotations={**spec.annotations, APP_NAME: app["name"]})


def _number(key: str, value: Any, default: Any) -> int:
    if value is None:
        return int(default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidRequest(f"{key} must be a positive integer")
    return value


def is_fn(spec: FunctionSpec) -> bool:
    return FN_ID in spec.annotations and APP_ID in spec.annotations


def fn_doc(spec: FunctionSpec, base_url: str = "") -> dict[str, Any]:
    """Fn's document of the fn that ``spec`` is."""
    ann = spec.annotations
    annotations = json.loads(ann.get(FN_ANNOTATIONS, "{}"))
    if base_url:
        annotations[INVOKE_ENDPOINT] = f"{base_url}/invoke/{ann[FN_ID]}"
    return {"id": ann[FN_ID], "name": ann[FN_NAME], "app_id": ann[APP_ID],
            "image": spec.image, "memory": spec.memory_mb, "timeout": round(spec.timeout_s),
            "idle_timeout": round(spec.idle_timeout_s),
            "config": json.loads(ann.get(FN_CONFIG, "{}")), "annotations": annotations,
            "created_at": spec.created_at, "updated_at": spec.updated_at}


def new_trigger(body: Mapping[str, Any], fn: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": new_id(), "name": check_name("trigger", body.get("name")),
            "app_id": fn["app_id"], "fn_id": fn["id"], "type": http_type(body.get("type")),
            "source": trigger_source(body.get("source")),
            "annotations": dict(body.get("annotations") or {})}


def http_type(value: Any) -> str:
    if value != "http":
        raise InvalidRequest("Trigger type must be 'http'")
    return "http"


def trigger_source(value: Any) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise InvalidRequest("Missing trigger source")
    if any(c.isspace() or c in "?#" for c in value):
        raise InvalidRequest(f"Invalid trigger source {value!r}")
    return "/" + value.strip("/")


def trigger_doc(resource: Resource, base_url: str, app_name: str) -> dict[str, Any]:
    doc = {**resource.doc, "created_at": resource.created_at,
           "updated_at": resource.updated_at}
    doc["annotations"] = {**doc.get("annotations", {}),
                          HTTP_ENDPOINT: f"{base_url}/t/{app_name}{doc['source']}"}
    return doc


def page(items: Iterable[dict[str, Any]], per_page: int | None, cursor: str | None,
         key: Callable[[dict[str, Any]], str] = lambda item: str(item["name"])
         ) -> dict[str, Any]:
    """One page of ``items`` in ``key`` order after ``cursor``; ``next_cursor`` when more
    may follow."""
    size = min(per_page or PER_PAGE[0], PER_PAGE[1])
    after = _decode(cursor) if cursor else None
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [item for item in ordered if key(item) > after]
    chosen = ordered[:size]
    answer: dict[str, Any] = {"items": chosen}
    if len(ordered) > size:
        answer["next_cursor"] = base64.urlsafe_b64encode(key(chosen[-1]).encode()).decode()
    return answer


def _decode(cursor: str) -> str:
    try:
        return base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidRequest("Invalid cursor") from None


def route_slug(path: Any) -> tuple[str, str]:
    """A v1 route's path (``/hello``, ``/a/b``) and the fn name it becomes (``a-b``)."""
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidRequest("Missing route path")
    clean = "/" + path.strip("/")
    return clean, check_name("route", clean[1:].replace("/", "-"))


def route_doc(spec: FunctionSpec) -> dict[str, Any]:
    """Fn v1's document of the route that ``spec`` is."""
    fn = fn_doc(spec)
    return {"app_name": spec.annotations[APP_NAME], "path": spec.annotations[ROUTE],
            "image": fn["image"], "memory": fn["memory"], "timeout": fn["timeout"],
            "idle_timeout": fn["idle_timeout"], "type": "sync",
            "format": spec.annotations.get(FORMAT, HTTP_STREAM), "config": fn["config"],
            "headers": {}, "annotations": fn["annotations"],
            "created_at": spec.created_at, "updated_at": spec.updated_at}
