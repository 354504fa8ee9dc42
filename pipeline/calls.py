"""The HTTP request a function was called by, carried on its event, and the variables the
function's process gets for it: those of OpenFaaS's classic watchdog (``Http_Method``,
``Http_Path``, ``Http_Query``, ``Http_ContentType``, ``Http_<Header>``).

The request travels as one event extension (a JSON string), so an async call that goes
through Kafka and a worker gives its function the same variables as a sync call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.records import Event

HTTP_EXTENSION = "faasflowhttp"
# never handed to a function: the gateway's own credentials
PRIVATE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class HttpCall:
    """``path`` is what follows the function's name (``/`` when nothing does); ``query``
    the raw query string; ``headers`` the caller's, but its credentials."""

    method: str
    path: str = "/"
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    def extension(self) -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in PRIVATE_HEADERS}
        return {HTTP_EXTENSION: json.dumps({"method": self.method, "path": self.path,
                                            "query": self.query, "headers": headers})}

    @classmethod
    def of(cls, event: Event) -> HttpCall | None:
        raw = event.extensions.get(HTTP_EXTENSION)
        if raw is None:
            return None
        try:
            call = json.loads(raw)
            return cls(method=str(call["method"]), path=str(call["path"]),
                       query=str(call["query"]),
                       headers={str(k): str(v) for k, v in dict(call["headers"]).items()})
        except (ValueError, KeyError, TypeError):  # an extension a producer made up
            return None


def canonical(header: str) -> str:
    """A header's name as Go writes it (``x-call-id`` → ``X-Call-Id``)."""
    return "-".join(part.capitalize() for part in header.split("-"))


def watchdog_env(event: Event) -> dict[str, str]:
    """The classic watchdog's variables for the call that made ``event`` (none for an event
    that came from anywhere else)."""
    call = HttpCall.of(event)
    if call is None:
        return {}
    env = {f"Http_{canonical(k).replace('-', '_')}": v for k, v in call.headers.items()}
    env.update({"Http_Method": call.method, "Http_Path": call.path})
    if call.query:
        env["Http_Query"] = call.query
    if event.datacontenttype:
        env["Http_ContentType"] = event.datacontenttype
    return env
