"""Dashboard forms onto the JSON API's own input models and services.

A form is decoded into the body the API would have received (``body``), validated by the
same pydantic model, and handed to the same ``ControlPlane`` call. What goes wrong comes
back as a ``Refusal`` the page shows next to its form, with the status the API would have
answered: never a 500 for input, and a banner saying the broker is down when it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.responses import RedirectResponse

from pipeline import errors
from pipeline.gateway.errors import field_of, status_of

BROKER_DOWN = ("Kafka is not answering, so nothing was changed: try again once the broker "
               "is back.")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a form's action did not happen: ``fields`` maps an input's name to its
    problem, ``message`` is the whole story, ``banner`` marks an outage, not the input."""

    message: str
    status: int
    fields: dict[str, str] = field(default_factory=dict)
    banner: bool = False


def refusal(exc: ValidationError | errors.FaasflowError) -> Refusal:
    if isinstance(exc, ValidationError):
        problems = {field_of(e): e["msg"] for e in exc.errors()}
        listed = "; ".join(f"{name}: {msg}" for name, msg in problems.items())
        return Refusal(f"Check the form: {listed}", 422, problems)
    if isinstance(exc, errors.BrokerUnavailable):
        return Refusal(f"{BROKER_DOWN} ({exc.message})", status_of(exc), banner=True)
    if isinstance(exc, errors.NotFound):
        return Refusal(f"{exc.message} (deleted already?)", 404)
    return Refusal(exc.message, status_of(exc))


def body(form: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The fields of ``form`` named ``names`` that were filled in; an empty input means
    "the API's default", as a field left out of a JSON body does."""
    return {name: form[name].strip() if isinstance(form[name], str) else form[name]
            for name in names if name in form and str(form[name]).strip() != ""}


def flag(form: Mapping[str, Any], name: str) -> bool | None:
    """A checkbox: ticked is true, unticked leaves the API's default."""
    return True if name in form else None


def pairs(text: str, what: str = "env") -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines skipped), as an environment is typed."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise errors.InvalidRequest(f"{what}: line {number} is not KEY=VALUE")
        found[key.strip()] = value
    return found


def json_object(text: str, what: str) -> dict[str, Any] | None:
    """A JSON object typed into a textarea; empty is none."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidRequest(f"{what}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise errors.InvalidRequest(f"{what}: a JSON object, such as {{\"type\": [\"push\"]}}")
    return value


def told(target: str, **notice: str) -> RedirectResponse:
    """After a form's action, to ``target`` telling what happened (``deleted=…``,
    ``gone=…``, ``down=…``): names only, so a link cannot make a page say anything else."""
    return RedirectResponse(f"{target}?{urlencode(notice)}" if notice else target, 303)
