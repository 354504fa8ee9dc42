"""CloudEvents from any producer over HTTP: structured mode (the whole event as JSON) and
binary mode (attributes in ``ce-*`` headers, the data as the body), as in the CloudEvents
HTTP protocol binding 1.0."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipeline.errors import InvalidRequest
from pipeline.records import SPEC_VERSION, Event, strict_loads

STRUCTURED_TYPE = "application/cloudevents+json"
REQUIRED = ("id", "source", "type", "specversion")
STRINGS = (*REQUIRED, "subject", "time", "datacontenttype", "data_base64")


def parse(headers: Mapping[str, str], body: bytes) -> Event:
    """``headers`` with lower-case names, as Starlette gives them."""
    content_type = headers.get("content-type")
    if content_type and content_type.split(";")[0].strip().lower() == STRUCTURED_TYPE:
        return structured(body)
    if "ce-specversion" in headers:
        return binary(headers, body)
    raise InvalidRequest(
        f"not a CloudEvent: send Content-Type {STRUCTURED_TYPE} with the event as JSON, "
        "or the attributes as ce-id, ce-source, ce-type and ce-specversion headers"
    )


def structured(body: bytes) -> Event:
    try:
        record = strict_loads(body)  # nesting bounded: a deep body cannot exhaust the stack
    except ValueError as exc:
        raise InvalidRequest(f"the structured CloudEvent is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise InvalidRequest("the structured CloudEvent must be a JSON object")
    _check(record)
    try:
        return Event.from_dict(record)
    except ValueError as exc:  # data_base64 that is not base64
        raise InvalidRequest(f"invalid CloudEvent: {exc}") from None


def binary(headers: Mapping[str, str], body: bytes) -> Event:
    attributes: dict[str, Any] = {
        name[3:]: value for name, value in headers.items() if name.startswith("ce-")
    }
    _check(attributes)
    if "content-type" in headers:
        attributes["datacontenttype"] = headers["content-type"]
    return replace(Event.from_dict(attributes), data=body)


def _check(attributes: Mapping[str, Any]) -> None:
    wrong = [a for a in STRINGS if a in attributes and not isinstance(attributes[a], str)]
    if wrong:
        raise InvalidRequest(f"CloudEvent attributes must be strings: {', '.join(wrong)}")
    missing = [a for a in REQUIRED if not attributes.get(a)]
    if missing:
        raise InvalidRequest(f"CloudEvent attributes missing: {', '.join(missing)}")
    if attributes["specversion"] != SPEC_VERSION:
        raise InvalidRequest(f"unsupported specversion {attributes['specversion']!r}: "
                             f"only {SPEC_VERSION}")
